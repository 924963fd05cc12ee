"""Gunicorn settings for the floor: every setting cofre's config module sets, copied.

Copying them (rather than restating them) keeps the comparison fair when
server/gunicorn_conf.py changes: same worker class and threads, preload,
keep-alive, timeouts, request limits and access log. Bind and worker count come
from the command line, for both servers. cofre's hooks (metrics directory,
post-fork engine disposal) are left out: they do not run per request; the GIL
switch interval cofre sets after the fork is set here too.
"""

from __future__ import annotations

from gunicorn.config import KNOWN_SETTINGS

from server import gunicorn_conf as _cofre

_COPIED = {
    setting.name: getattr(_cofre, setting.name)
    for setting in KNOWN_SETTINGS
    if hasattr(_cofre, setting.name)
    and not callable(getattr(_cofre, setting.name))
    and setting.name not in ("bind", "workers")
}
globals().update(_COPIED)


def post_fork(server: object, worker: object) -> None:
    """The one part of cofre's post_fork that touches how requests run: its workers'
    GIL switch interval, so both servers' threads take turns alike."""
    import sys

    sys.setswitchinterval(_cofre.GIL_SWITCH_INTERVAL_S)
