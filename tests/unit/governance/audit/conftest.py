"""Short lock timeouts: fail-closed tests should not wait long."""

from typing import Any

import pytest


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return overrides | {"db_lock_timeout_ms": 500}
