"""Gunicorn settings for the floor: the best plain setup, not one shaped like cofre.

Sync workers (one request at a time per process: no thread hand-offs, no GIL
contention, the fastest Gunicorn worker for CPU-bound handlers), no access log
(a log line per request is work cofre does for its audit check, a plain app
need not), the app preloaded in the master so the workers share the estimators'
pages. Bind and worker count come from the command line (bench/run.py passes
127.0.0.1 and --workers 2, as to every server).
"""

from __future__ import annotations

worker_class = "sync"
preload_app = True
accesslog = None
errorlog = "-"
loglevel = "warning"
timeout = 60
