"""The `cofre` command line: a click group, one module per noun.

Every command fails with a one-line reason and a non-zero exit; listing
commands take --json. The CLI acts with the authority of whoever can read the
key directory (the operator on the host), recorded as `cli:<login>`.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from governance.accounts.actor import Actor, cli_operator
from governance.errors import CofreError
from server.config import ConfigError
from server.container import Container
from server.extension import EXTENSION
from server.logging import redact


class CofreGroup(click.Group):
    """Turns expected failures into one-line errors instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CofreError as exc:
            raise click.ClickException(exc.detail) from None
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except SQLAlchemyError as exc:
            raise click.ClickException(database_problem(exc)) from None


def database_problem(exc: SQLAlchemyError) -> str:
    """One line for an unreachable or uninitialised database (no URL password in it)."""
    original = str(getattr(exc, "orig", None) or exc).strip()
    first = original.splitlines()[0] if original else type(exc).__name__
    missing = ("no such table", "does not exist", "unable to open database file")
    hint = "; run `cofre init`" if any(m in first for m in missing) else ""
    return redact(f"database: {first}{hint}")


class CliState:
    """The app the command works on, built on first use (--help needs none)."""

    def __init__(self) -> None:
        self._app: Flask | None = None

    @property
    def app(self) -> Flask:
        if self._app is None:
            from server.app import create_app

            self._app = create_app()
        return self._app

    @property
    def services(self) -> Container:
        container: Container = self.app.extensions[EXTENSION]
        return container

    def close(self) -> None:
        """Release the database connections the command opened."""
        if self._app is not None:
            self.services.close()

    @property
    def actor(self) -> Actor:
        return cli_operator(getpass.getuser())


pass_state = click.make_pass_decorator(CliState, ensure=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(cls=CofreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cofre", prog_name="cofre")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """cofre: serve scikit-learn models with governance built in."""
    state = ctx.ensure_object(CliState)
    ctx.call_on_close(state.close)


def _register() -> None:
    from server.cli import (
        alerts,
        appliance,
        audit,
        backup,
        compliance,
        demo,
        feedback,
        init,
        jobs,
        keys,
        models,
        monitor,
        predict_batch,
        retrain,
        reviews,
        rollouts,
        serve,
        signers,
        subjects,
        users,
    )

    for module in (
        appliance,
        init,
        serve,
        demo,
        users,
        keys,
        models,
        audit,
        predict_batch,
        backup,
        jobs,
        retrain,
        alerts,
        subjects,
        reviews,
        compliance,
        monitor,
        feedback,
        rollouts,
        signers,
    ):
        for command in module.commands:
            cli.add_command(command)


_register()


def main() -> None:
    os.umask(0o077)  # everything the CLI writes (database, artifacts, backups) is private
    cli(prog_name="cofre")
    sys.exit(0)
