"""A fresh Debian host on this machine for the playbook, reached over SSH.

Why this shape: the machine has no Docker and systemd is not PID 1, so the target is
a Debian root made with debootstrap, entered with chroot, living in a network
namespace of its own. Its sshd listens on 127.0.0.1:22 of that namespace and the
playbook runs inside the namespace too, through Ansible's ordinary ssh connection
(the chroot connection plugin is not in ansible-core). PostgreSQL, nginx and
Gunicorn of the target bind the namespace's loopback, so nothing collides with
servers of the machine itself, and every process of the target is found (and
stopped at teardown) by its namespace.

The root is a cached tarball (tests/support/builds.py): a minimal Debian with
python3, systemd, sudo and sshd, plus the .deb files of the roles' packages already
downloaded, so the playbook installs them with no network. The wheelhouse of cofre's
dependencies (pinned by constraints.txt) is cached beside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.builds import REPO, debian_root, require_root_and_tools, run, wheelhouse
from tests.support.hosts import SSH_OPTIONS, Target, mount_host_filesystems

ANSIBLE_DIR = REPO / "ansible"
# What a freshly installed server has; the roles install the rest.
BASE_PACKAGES = ["python3", "systemd", "sudo", "openssh-server", "ca-certificates"]
ROLES = ("cofre", "cofre_postgresql", "cofre_nginx")
# Ansible's apt module installs this itself when missing (so it is downloaded too).
ANSIBLE_NEEDS = ["python3-apt"]
TOOLS = ("debootstrap", "ip", "ssh", "ssh-keygen", "curl", "chroot", "tar")


def playbook_command(inventory: Path, password_file: Path, overrides: Path) -> list[str]:
    """ansible-playbook site.yml with a vault password file and the test's variables."""
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    vault = ["--vault-password-file", str(password_file)]
    return [playbook, "-i", str(inventory), *vault, "-e", f"@{overrides}", "site.yml"]


def ansible_env(base: Path) -> dict[str, str]:
    """The environment Ansible runs in: the repository's ansible.cfg, no colour."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_LOCAL_TEMP": str(base / "ansible-tmp"),
    }


def require_target_support() -> None:
    require_root_and_tools("the Ansible deployment test", "chroot, network namespaces", TOOLS)


def role_packages() -> list[str]:
    """The Debian packages the roles install, read from their defaults (every list
    named *_packages, such as cofre_postgresql_client_packages)."""
    packages: set[str] = set()
    for role in ROLES:
        defaults = yaml.safe_load((ANSIBLE_DIR / "roles" / role / "defaults/main.yml").read_text())
        for name, value in defaults.items():
            if name.endswith("_packages"):
                packages.update(value)
    return sorted(packages | set(ANSIBLE_NEEDS))


def rootfs_tarball() -> Path:
    """The cached root of an ansible target: a minimal Debian with sshd and sudo, and
    the roles' packages downloaded (not installed) so the playbook needs no network."""
    return debian_root("rootfs", BASE_PACKAGES, download=role_packages())


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A fresh target host with sshd answering on 127.0.0.1:22 of its namespace."""
    require_target_support()
    tarball = rootfs_tarball()
    base = tmp_path_factory.mktemp("target")
    root = base / "root"
    root.mkdir()
    run(["tar", "-C", str(root), "-xf", str(tarball)])
    netns = f"cofre-test-{os.getpid()}"
    run(["ip", "netns", "add", netns])
    mounts: list[Path] = []
    box = Target(root=root, netns=netns)
    try:
        run(["ip", "-n", netns, "link", "set", "lo", "up"])
        mounts = mount_host_filesystems(root)
        (root / "run/sshd").mkdir(mode=0o755)
        yield box
    finally:
        box.stop_everything()
        for point in reversed(mounts):
            subprocess.run(["umount", "-l", str(point)], check=False)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def ssh_key(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key the control host logs in to the target's root with; sshd started."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    ssh_dir = target.root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(key.with_suffix(".pub"), ssh_dir / "authorized_keys")
    (ssh_dir / "authorized_keys").chmod(0o600)
    # No PAM: pam_loginuid cannot work in a chroot; keys only.
    run(
        target.chroot(
            [
                "/usr/sbin/sshd",
                "-o",
                "ListenAddress=127.0.0.1",
                "-o",
                "UsePAM=no",
                "-o",
                "PasswordAuthentication=no",
            ]
        )
    )
    deadline = time.monotonic() + 20
    probe = ["ssh", "-i", str(key), *SSH_OPTIONS, "root@127.0.0.1", "true"]
    while subprocess.run(target.in_netns(probe), capture_output=True, check=False).returncode:
        if time.monotonic() > deadline:
            raise AssertionError("sshd of the target did not answer")
        time.sleep(0.2)
    return key


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheelhouse the playbook ships: this tree's cofre wheel and its dependencies."""
    require_target_support()
    return wheelhouse(tmp_path_factory.mktemp("wheelhouse") / "wheels")


@pytest.fixture(scope="module")
def build_wheelhouse() -> object:
    """The wheelhouse builder, for tests that ship another version."""
    return wheelhouse
