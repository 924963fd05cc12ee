"""Podman on this machine, for building and running the image of container/.

This machine is itself a container, so podman runs with what it allows: runc with
the cgroupfs manager (crun refuses a cgroup v1 hierarchy), resource limits below the
process's own (there is no CAP_SYS_RESOURCE to raise them), the vfs storage driver
in a store of the test's own, and events in a file. Those settings are the test's
(a containers.conf it writes), not the image's. The base image is a minimal Debian
12 made with debootstrap (tests/support/builds.py) and imported under the name the
Containerfile is given, since the registries of images are out of reach here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.builds import REPO, debian_root, require_root_and_tools, run, wheelhouse

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
BASE = "localhost/cofre-test/debian:bookworm-slim"
IMAGE = "localhost/cofre:test"


@dataclass(frozen=True)
class Podman:
    """The podman command line bound to the test's own store and settings."""

    store: Path
    conf: Path

    def argv(self, *args: str) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.store / "storage"),
            "--runroot",
            str(self.store / "run"),
            "--storage-driver",
            "vfs",
            *args,
        ]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"CONTAINERS_CONF": str(self.conf)}
        if check:
            return run(self.argv(*args), env=env)
        return subprocess.run(self.argv(*args), env=env, capture_output=True, text=True)


TOOLS = ("podman", "runc", "debootstrap", "ip")


def require_podman() -> None:
    require_root_and_tools("the container test", "podman's store, network namespaces", TOOLS)


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    require_podman()
    store = tmp_path_factory.mktemp("podman")
    conf = store / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    tool = Podman(store, conf)
    yield tool
    tool("rm", "--all", "--force", "--time", "0", check=False)
    # vfs layers are plain directories; podman removes them with the store.
    tool("system", "reset", "--force", check=False)


@pytest.fixture(scope="session")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image built from container/Containerfile with this tree's wheelhouse."""
    podman("import", str(debian_root("container-base", include=())), BASE)
    wheels = wheelhouse(tmp_path_factory.mktemp("image") / "wheels")
    podman(
        "build",
        "--format",
        "docker",
        "--network",
        "host",
        "--build-arg",
        f"BASE={BASE}",
        "--file",
        str(REPO / "container" / "Containerfile"),
        "--tag",
        IMAGE,
        str(wheels),
    )
    return IMAGE
