"""A published iris model (version 1, production) for the subject-rights tests."""

from __future__ import annotations

import pytest

from server.container import Container
from tests.support.publishing import publish


@pytest.fixture
def iris(cofre: Container) -> Container:
    publish(cofre, "iris", aliases=["production"])
    return cofre
