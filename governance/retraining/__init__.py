"""Gated retraining: plans, fresh data, quality gates, champion against candidate."""
