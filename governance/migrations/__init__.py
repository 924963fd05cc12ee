"""Alembic migrations of the governed schema; `upgrade()` is what `cofre init` runs.

Each part of the appliance may add its own branch off the initial revision
(a `branch_labels` entry); `upgrade()` takes every branch to its head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

HERE = Path(__file__).parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> tuple[str, str]:
    """Migrate every branch to its head; return (revisions before, after) as text."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "heads")
    return before, current_revision(engine)


def current_revision(engine: Engine) -> str:
    """The database's revisions ("" when empty), sorted and comma-joined."""
    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads))


def head_revision(engine: Engine) -> str:
    """The revisions the code expects, in the same form as current_revision.

    A head another branch depends on (`depends_on`) is not kept in the database's
    version table once the dependent revision is applied, so it is left out here too.
    """
    script = ScriptDirectory.from_config(alembic_config(engine))
    needed: set[str] = set()
    for revision in script.walk_revisions():
        depends = revision.dependencies or ()
        needed.update((depends,) if isinstance(depends, str) else depends)
    return ",".join(sorted(set(script.get_heads()) - needed))
