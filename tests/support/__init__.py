"""Helpers shared by tests: small trained models and skops artifacts."""
