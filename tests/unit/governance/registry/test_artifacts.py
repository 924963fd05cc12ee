"""Encrypted artifacts: no plaintext at rest, tampering and wrong keys refused by name."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from governance.crypto.keyring import KeyRing
from governance.errors import IntegrityError, KeyUnavailable
from governance.registry.records import ModelVersion
from server import create_app
from server.container import Container
from tests.conftest import services_of
from tests.support.artifacts import drop, flip_a_byte, overwrite, stored
from tests.support.artifacts import names as artifact_names
from tests.support.models import cancer_pipeline, iris_classifier, iris_classifier_v2
from tests.support.publishing import distinctive_chunks, publish


def _encodings(chunk: bytes) -> list[bytes]:
    """The chunk as raw bytes, hex, and base64 at each of the three alignments."""
    forms = [chunk, chunk.hex().encode()]
    for shift in range(3):
        encoded = base64.b64encode(chunk[shift:])
        forms.append(encoded[4:-4])  # drop the edges, which depend on neighbours
    return forms


def _files_under(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file():
            yield path


def _database_values(cofre: Container) -> Iterator[bytes]:
    """Every value of every row of every table, as bytes."""
    metadata = MetaData()
    metadata.reflect(cofre.engine)
    with cofre.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        yield bytes(value)
                    elif value is not None:
                        yield str(value).encode()


def test_no_plaintext_artifact_bytes_at_rest(cofre: Container) -> None:
    artifacts = [iris_classifier(), cancer_pipeline()]
    for index, artifact in enumerate(artifacts):
        publish(cofre, f"model-{index}", artifact, aliases=["production"])
    cofre.engine.dispose()  # flush SQLite's WAL into the files we scan
    needles = [form for a in artifacts for c in distinctive_chunks(a) for form in _encodings(c)]
    scanned = list(_files_under(cofre.settings.home)) + list(_files_under(cofre.settings.key_dir))
    if cofre.settings.artifact_store == "files":
        assert any(p.suffix == ".cofre" for p in scanned)
    else:  # the rows are among the database values scanned below
        assert len(artifact_names(cofre)) >= 2  # with the compiled (ONNX) forms
    for path in scanned:
        content = path.read_bytes()
        assert not any(n in content for n in needles), f"plaintext in {path}"
    values = list(_database_values(cofre))
    assert any(len(v) > 0 for v in values)
    for value in values:
        assert not any(n in value for n in needles), "plaintext in the database"


def test_the_sanity_of_the_scan(cofre: Container) -> None:
    """The needles would be found if the plaintext were there."""
    artifact = iris_classifier()
    (cofre.settings.home / "leak.bin").write_bytes(b"xx" + artifact + b"yy")
    needles = [form for c in distinctive_chunks(artifact) for form in _encodings(c)]
    content = (cofre.settings.home / "leak.bin").read_bytes()
    assert all(n in content for n in needles[:1])
    assert any(n in base64.b64encode(artifact) for n in needles[2:])


def _version(cofre: Container, name: str, number: int) -> ModelVersion:
    with cofre.read() as session:
        version = cofre.registry.resolve(session, name, version=number)
        version.model  # noqa: B018 - load the relationship before the session ends
        return version


def test_a_flipped_bit_is_refused_naming_model_and_version(cofre: Container) -> None:
    publish(cofre, "iris")
    version = _version(cofre, "iris", 1)
    flip_a_byte(cofre, version.artifact_file)
    with pytest.raises(IntegrityError, match=r"model 'iris' version 1: failed authentication"):
        cofre.registry.load_estimator(version)


def test_a_file_swapped_between_versions_is_refused(cofre: Container) -> None:
    publish(cofre, "iris")
    publish(cofre, "iris", iris_classifier_v2())
    first, second = _version(cofre, "iris", 1), _version(cofre, "iris", 2)
    first_bytes = stored(cofre, first.artifact_file)
    overwrite(cofre, first.artifact_file, stored(cofre, second.artifact_file))
    overwrite(cofre, second.artifact_file, first_bytes)
    with pytest.raises(IntegrityError, match="model 'iris' version 1"):
        cofre.registry.load_estimator(first)
    with pytest.raises(IntegrityError, match="model 'iris' version 2"):
        cofre.registry.load_estimator(second)


def test_a_missing_artifact_file_is_named(cofre: Container) -> None:
    publish(cofre, "iris")
    version = _version(cofre, "iris", 1)
    drop(cofre, version.artifact_file)
    with pytest.raises(
        IntegrityError, match="model 'iris' version 1: the artifact file is missing"
    ):
        cofre.registry.load_estimator(version)


def _fresh(cofre: Container, overrides: dict[str, object]) -> Container:
    """A new container (as a restarted worker would be): no key cached in memory."""
    return services_of(create_app(overrides))


def test_a_wrong_master_key_is_refused(cofre: Container, overrides: dict[str, object]) -> None:
    publish(cofre, "iris")
    ring = KeyRing(cofre.settings.key_dir)
    kek_file = ring.key_dir / f"kek-{ring.current_kek_id()}.key"
    kek_file.write_bytes(os.urandom(32))
    fresh = _fresh(cofre, overrides)
    version = _version(fresh, "iris", 1)
    with pytest.raises(IntegrityError, match=r"model 'iris' version 1: .*master key"):
        fresh.registry.load_estimator(version)
    fresh.close()


def test_a_missing_master_key_is_refused(cofre: Container, overrides: dict[str, object]) -> None:
    publish(cofre, "iris")
    ring = KeyRing(cofre.settings.key_dir)
    (ring.key_dir / f"kek-{ring.current_kek_id()}.key").unlink()
    fresh = _fresh(cofre, overrides)
    version = _version(fresh, "iris", 1)
    with pytest.raises(KeyUnavailable, match=r"model 'iris' version 1: key file kek-.* is missing"):
        fresh.registry.load_estimator(version)
    fresh.close()


def test_a_wrapped_key_moved_to_another_version_is_refused(cofre: Container) -> None:
    publish(cofre, "iris")
    publish(cofre, "iris", iris_classifier_v2())
    with cofre.write() as session:
        first, second = session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
        second.wrapped_key, second.artifact_file = first.wrapped_key, first.artifact_file
    with pytest.raises(IntegrityError, match="model 'iris' version 2"):
        cofre.registry.load_estimator(_version(cofre, "iris", 2))


def test_artifacts_live_in_the_database_on_postgresql_and_in_files_on_sqlite(
    cofre: Container,
) -> None:
    """The default place follows the database: application hosts on PostgreSQL share
    nothing else, while a single SQLite host keeps files."""
    publish(cofre, "iris")
    version = _version(cofre, "iris", 1)
    files = list(cofre.settings.artifact_dir.glob("*.cofre"))
    if cofre.settings.database_url.startswith("postgresql"):
        assert cofre.settings.artifact_store == "database"
        assert files == []
        assert version.artifact_file in artifact_names(cofre)
    else:
        assert cofre.settings.artifact_store == "files"
        assert version.artifact_file in [p.name for p in files]
    assert cofre.registry.load_estimator(version) is not None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_row_changed_after_its_check_is_checked_again(cofre: Container) -> None:
    """The readiness check remembers an authenticated row by its row version (xmin):
    an UPDATE, even one writing back the same length, makes it authenticate again."""
    publish(cofre, "iris", aliases=["production"])
    version = _version(cofre, "iris", 1)
    cofre.registry.check_artifact(version)
    flip_a_byte(cofre, version.artifact_file)
    with pytest.raises(IntegrityError, match="model 'iris' version 1: failed authentication"):
        cofre.registry.check_artifact(version)
