"""Publishing helpers for tests: put a model in the registry in one line."""

from __future__ import annotations

from collections.abc import Sequence

from governance.accounts.actor import SYSTEM
from governance.registry.records import ModelVersion
from governance.registry.service import ModelCard, PublishRequest
from server.container import Container
from tests.support.models import CARD, iris_classifier


def publish(
    cofre: Container,
    name: str = "iris",
    artifact: bytes | None = None,
    aliases: Sequence[str] = (),
    card: ModelCard = CARD,
    features: list[dict[str, str]] | None = None,
    allow_duplicate: bool = False,
) -> ModelVersion:
    """Publish `artifact` (default: the iris classifier) as the next version of `name`."""
    request = PublishRequest(
        name=name,
        artifact=artifact if artifact is not None else iris_classifier(),
        card=card,
        features=features,
        aliases=list(aliases),
        allow_duplicate=allow_duplicate,
    )
    with cofre.write() as session:
        return cofre.registry.publish(session, SYSTEM, request)


def distinctive_chunks(artifact: bytes, size: int = 64) -> list[bytes]:
    """Slices of the plaintext that occur nowhere else: taken from the middle of the
    zip members' binary data (the .npy arrays), never from the JSON schema."""
    import io
    import zipfile

    chunks = []
    with zipfile.ZipFile(io.BytesIO(artifact)) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".npy") and info.file_size >= 2 * size:
                data = archive.read(info)
                chunks.append(data[len(data) - size :])
    assert chunks, "the artifact has no array large enough to sample"
    # skops stores members uncompressed, so each chunk is also a slice of the file.
    assert all(chunk in artifact for chunk in chunks)
    return chunks
