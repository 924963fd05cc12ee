"""HTTP endpoints (JSON): health, models, accounts, audit, and the prediction doors."""
