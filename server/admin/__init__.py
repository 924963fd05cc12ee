"""The admin web pages under /admin/: server-rendered Jinja, one base layout, no
JavaScript needed for the core reads and no asset from the internet.

Every view declares its permission (`@requires` or `@public`); the access guard
enforces the role table on the server, whatever links a page shows.
"""

from __future__ import annotations

from flask import Blueprint


def blueprints() -> list[Blueprint]:
    from server.admin.views import (
        accounts,
        alerts,
        assets,
        audit,
        auth,
        compliance,
        dashboard,
        models,
        monitoring,
        operations,
        reviews,
        subjects,
        traffic,
    )

    modules = [assets, auth, dashboard, audit, models, traffic, accounts, operations]
    modules += [subjects, reviews, compliance, monitoring, alerts]
    return [module.blueprint for module in modules]
