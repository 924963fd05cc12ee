"""Ids in URLs, query strings and CLI arguments: ASCII digits within the column's
range, else 404 (a path) or 422 (a query parameter) or a usage error (the CLI);
never another id, never a 500 (issue 14.4)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.routing.converters import NumberConverter

from server.cli import cli
from server.container import Container

# Arabic-Indic three, superscript two, 23 digits, zero, the first id past the column.
BAD_IDS = ["%D9%A3", "%C2%B2", "1" * 23, "0", str(2**31), "-1", "+1"]


def _is_number(converter: object) -> bool:
    return isinstance(converter, NumberConverter)


def _path(rule: Rule, bad: str) -> str:
    """The rule's path with `bad` for every numeric argument and "x" for the others."""

    def fill(match: re.Match[str]) -> str:
        return bad if _is_number(rule._converters[match.group(2)]) else "x"

    return re.sub(r"<(?:([^<>:]*):)?(\w+)>", fill, rule.rule)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_integer_route_answers_404_to_a_bad_id(
    app: Flask, client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    admin = api_key("admin")
    rules = [r for r in app.url_map.iter_rules() if any(map(_is_number, r._converters.values()))]
    assert len(rules) >= 8
    problems = []
    for rule in rules:
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for bad in BAD_IDS:
                answer = client.open(_path(rule, bad), method=method, headers=admin)
                if answer.status_code != 404:
                    problems.append(f"{method} {_path(rule, bad)}: {answer.status_code}")
    assert problems == []


def test_a_non_ascii_digit_revokes_no_key(
    client: FlaskClient, cofre: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    admin = api_key("admin")
    api_key("predictor")
    api_key("predictor")  # key 3
    for bad in ("%D9%A3", "%C2%B2", "1" * 23):
        assert client.delete(f"/api/v1/keys/{bad}", headers=admin).status_code == 404
    with cofre.read() as session:
        assert all(k.revoked_at is None for k in cofre.accounts.keys(session))


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/operations/retraining/runs?plan=%D9%A3",
        "/api/v1/operations/retraining/runs?plan=" + "1" * 23,
        "/api/v1/operations/retraining/runs?limit=%C2%B2",
        "/api/v1/operations/jobs?limit=" + "9" * 23,
        "/admin/audit/?version=%C2%B2",
        "/admin/audit/?page=" + "9" * 23,
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_ids_in_query_strings_are_422(
    client: FlaskClient, api_key: Callable[..., dict[str, str]], query: str
) -> None:
    assert client.get(query, headers=api_key("admin")).status_code == 422


@pytest.mark.parametrize(
    "args",
    [
        ["retrain", "run", "٣"],
        ["retrain", "runs", "--plan", "1" * 23],
        ["reviews", "show", "²"],
        ["models", "alias", "iris", "٣", "production"],
        ["models", "show", "iris:" + "1" * 23],
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_ids_on_the_command_line_are_usage_errors(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
