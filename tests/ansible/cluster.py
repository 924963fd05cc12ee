"""Several Debian hosts on this machine for the multi-node layout, joined by a switch.

Each host is the single-node test's target (tests/ansible/conftest.py) made several
times: a chroot in a network namespace of its own, reached over SSH. To keep four of
them affordable they share one unpacked root read-only, each writing into an
overlay of its own. A fifth namespace holds the switch: a bridge every host's veth
joins, with the control host's address on it, so Ansible, the load and every
request of the test come from there. The addresses are those of
ansible/inventories/multi-node (10.0.0.0/24), which nothing outside these
namespaces can see or reach.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.builds import run
from tests.support.hosts import SSH_OPTIONS, Target, mount_host_filesystems

SUBNET = "10.0.0"
CONTROL = f"{SUBNET}.1"
# The multi-node example's hosts and addresses (ansible/inventories/multi-node).
HOSTS = {
    "db1.example.internal": f"{SUBNET}.10",
    "app1.example.internal": f"{SUBNET}.21",
    "app2.example.internal": f"{SUBNET}.22",
    "proxy1.example.internal": f"{SUBNET}.5",
}


@dataclass
class Host(Target):
    """One host: its root (an overlay), its namespace and its address on the switch."""

    name: str = ""
    address: str = ""
    mounts: list[Path] = field(default_factory=list)

    def pids_matching(self, needle: str) -> list[int]:
        """Processes of this host whose command line contains `needle`."""
        found = []
        for pid in self._pids():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if needle.encode() in cmdline:
                    found.append(pid)
        return found


@dataclass
class Cluster:
    switch: str  # the namespace of the bridge and the control host
    hosts: dict[str, Host]
    key: Path  # the SSH key that logs in to every host's root

    def in_switch(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.switch, *argv]

    def host(self, short: str) -> Host:
        """A host by the start of its name ("app1")."""
        return next(h for n, h in self.hosts.items() if n.startswith(short + "."))


@contextlib.contextmanager
def cluster(base: Path, tarball: Path) -> Iterator[Cluster]:
    """Every host of HOSTS up with sshd answering on its address; all torn down after."""
    lower = base / "lower"
    lower.mkdir(parents=True)
    run(["tar", "-C", str(lower), "-xf", str(tarball)])
    tag = str(os.getpid())
    switch = f"cofre-sw-{tag}"
    hosts: dict[str, Host] = {}
    key = base / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    try:
        _switch(switch)
        for number, (name, address) in enumerate(HOSTS.items()):
            hosts[name] = _host(base, lower, switch, name, address, number, tag)
            _authorise(hosts[name], key)
            _start_sshd(hosts[name])
        made = Cluster(switch, hosts, key)
        for host in hosts.values():
            _wait_for_ssh(made, host)
        yield made
    finally:
        for host in hosts.values():
            host.stop_everything()
            for point in reversed(host.mounts):
                subprocess.run(["umount", "-l", str(point)], check=False)
            subprocess.run(["ip", "netns", "del", host.netns], check=False)
        subprocess.run(["ip", "netns", "del", switch], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _switch(namespace: str) -> None:
    run(["ip", "netns", "add", namespace])
    run(["ip", "-n", namespace, "link", "set", "lo", "up"])
    run(["ip", "-n", namespace, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", namespace, "addr", "add", f"{CONTROL}/24", "dev", "br0"])
    run(["ip", "-n", namespace, "link", "set", "br0", "up"])


def _host(
    base: Path, lower: Path, switch: str, name: str, address: str, number: int, tag: str
) -> Host:
    short = name.split(".", 1)[0]
    netns = f"cofre-{short}-{tag}"
    run(["ip", "netns", "add", netns])
    host = Host(root=base / short / "root", netns=netns, name=name, address=address)
    run(["ip", "-n", netns, "link", "set", "lo", "up"])
    # One veth per host: "eth0" inside, its peer plugged into the switch's bridge.
    peer = f"v{number}-{tag}"[:15]
    run(["ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", netns])
    run(["ip", "link", "set", peer, "netns", switch])
    run(["ip", "-n", switch, "link", "set", peer, "master", "br0"])
    run(["ip", "-n", switch, "link", "set", peer, "up"])
    run(["ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    upper, work = base / short / "upper", base / short / "work"
    for directory in (host.root, upper, work):
        directory.mkdir(parents=True)
    overlay = f"lowerdir={lower},upperdir={upper},workdir={work}"
    run(["mount", "-t", "overlay", "overlay", "-o", overlay, str(host.root)])
    host.mounts.append(host.root)
    host.mounts += mount_host_filesystems(host.root)
    (host.root / "run/sshd").mkdir(mode=0o755, exist_ok=True)
    (host.root / "etc/hostname").write_text(short + "\n")
    names = "".join(f"{a} {n} {n.split('.', 1)[0]}\n" for n, a in HOSTS.items())
    (host.root / "etc/hosts").write_text(f"127.0.0.1 localhost\n{names}")
    return host


def _authorise(host: Host, key: Path) -> None:
    ssh_dir = host.root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(key.with_suffix(".pub"), ssh_dir / "authorized_keys")
    (ssh_dir / "authorized_keys").chmod(0o600)


def _start_sshd(host: Host) -> None:
    # No PAM: pam_loginuid cannot work in a chroot; keys only.
    options = [f"ListenAddress={host.address}", "UsePAM=no", "PasswordAuthentication=no"]
    run(host.chroot(["/usr/sbin/sshd", *[f for o in options for f in ("-o", o)]]))


def ssh(made: Cluster, host: Host, command: list[str]) -> list[str]:
    """argv of `command` run on `host` as root, over SSH from the control host."""
    return made.in_switch(
        ["ssh", "-i", str(made.key), *SSH_OPTIONS, f"root@{host.address}", *command]
    )


def _wait_for_ssh(made: Cluster, host: Host) -> None:
    deadline = time.monotonic() + 30
    while subprocess.run(ssh(made, host, ["true"]), capture_output=True, check=False).returncode:
        if time.monotonic() > deadline:
            raise AssertionError(f"sshd of {host.name} did not answer")
        time.sleep(0.2)
