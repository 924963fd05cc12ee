"""The rights of the people the audit log is about: access (export), erasure by
crypto-shredding, legal holds, retention, and reviews of contested automated
decisions with an explanation computed by the version that decided.

Dependency rule, as for all of `governance`: no Flask, Werkzeug, click,
APScheduler or Gunicorn here (import-linter checks it), so the CLI, the
scheduler and the HTTP API share these use cases unchanged.
"""
