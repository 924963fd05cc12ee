"""The one prediction core: validate, resolve, predict, audit (fail closed).

Dependency rule: no Flask, Werkzeug, click, APScheduler or Gunicorn here, so
batch scoring and the scheduler reuse the same core as the HTTP doors.
"""
