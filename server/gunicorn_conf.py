"""Gunicorn settings for cofre (`gunicorn -c python:server.gunicorn_conf wsgi:app`).

The app is preloaded in the master so workers share its memory; the factory
opens no connection, and post_fork disposes whatever engine exists anyway, so
no connection, thread or file handle crosses the fork. Prometheus runs in
multiprocess mode: each worker writes its samples under the metrics directory
and /metrics adds them up.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from server.config import load_settings

_settings = load_settings()
_metrics_dir = _settings.metrics_dir or _settings.home / "metrics"
# Must be set before prometheus_client is imported (by the preloaded app below).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)

bind = _settings.bind
workers = _settings.workers
# Threads let concurrent requests in one worker share an audit commit (group
# commit, governance/audit/writer.py) and keep client connections alive.
worker_class = "gthread"
threads = _settings.threads
preload_app = True
umask = 0o077
timeout = 60
graceful_timeout = 30
keepalive = 5
# Bounded request line and headers: oversized requests are refused before Flask.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'
errorlog = "-"
forwarded_allow_ips = _settings.trusted_proxies if _settings.trust_proxy else ""
# Gunicorn's control socket (for `gunicornc`) is one path per user by default,
# shared by every instance that user runs; cofre is managed through its unit and
# signals, so there is none.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Samples of an earlier run would be added to this one's: start empty."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, mode=0o700)


# How long a thread may hold the GIL while another waits for it (Python's default:
# 5 ms). The audit writer thread gives the GIL up at every database call (SQLite
# and psycopg release it) and must then win it back from request threads busy in
# Python; with the default, each of its calls can wait up to 5 ms (the "convoy"
# effect) while every request of the batch waits for its record. 0.5 ms keeps that
# wait short for a small cost in thread switches.
GIL_SWITCH_INTERVAL_S = 0.0005


def post_fork(server: Any, worker: Any) -> None:
    import sys

    from server.extension import EXTENSION

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    app = worker.app.wsgi()
    app.extensions[EXTENSION].after_fork()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
