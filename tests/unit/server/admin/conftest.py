"""Helpers for the admin page tests: users of each role, signing in, CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from server.container import Container

PASSWORD = "a long enough password"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; return the session's CSRF token."""
    token = csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/admin/").text)


@pytest.fixture
def user(cofre: Container) -> Callable[[str], str]:
    """Factory: create a user with `role`; returns the username."""

    def make(role: str) -> str:
        with cofre.write() as session:
            cofre.accounts.create_user(session, SYSTEM, f"{role}-user", role, PASSWORD)
        return f"{role}-user"

    return make


@pytest.fixture
def signed_in(client: FlaskClient, user: Callable[[str], str]) -> Callable[[str], str]:
    """Factory: sign the test client in as a new user of `role`; returns the CSRF token."""

    def make(role: str) -> str:
        return sign_in(client, user(role))

    return make
