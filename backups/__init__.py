"""Copies, verifies and restores the governed state.

Dependency rule: backups imports governance, never server, and no web or
scheduler framework (import-linter checks it).
"""
