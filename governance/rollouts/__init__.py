"""Staged rollouts of a model's candidate version: canary, A/B, shadow, blue-green,
their per-variant figures, statistics, guardrails and four-eyes promotion.

No web or scheduler framework here (import-linter checks it): the API, the pages,
the CLI and the prediction core all reuse these services.
"""
