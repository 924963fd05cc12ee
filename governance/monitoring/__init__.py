"""Watching models in production from the appliance's own audit log: reference
profiles, ground-truth feedback, performance, drift, data quality, fairness and
the alerts raised on them. Nothing leaves the appliance: reports are computed in
the process that decrypts the rows and stored as rollups.

Dependency rule, as for all of `governance`: no Flask, Werkzeug, click,
APScheduler or Gunicorn here (import-linter checks it).
"""
