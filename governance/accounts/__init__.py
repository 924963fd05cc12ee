"""People and machines that may act: users, API keys, roles and their permissions."""
