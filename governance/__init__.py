"""The governed state and its rules: keys, accounts, registry, audit.

Dependency rule: governance imports nothing from `server` or `backups`, and no
web or scheduler framework (Flask, Werkzeug, click, APScheduler, Gunicorn), so
the CLI, the scheduler and batch jobs reuse it unchanged. import-linter checks
this (see pyproject.toml).
"""
