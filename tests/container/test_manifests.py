"""The Containerfile passes hadolint and the Kubernetes example validates against the
API's schemas, strictly (an unknown or misspelt field fails)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.builds import REPO

pytestmark = pytest.mark.container
KUBERNETES = REPO / "container" / "kubernetes"


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def test_the_containerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(REPO / "container" / "Containerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_kubernetes_manifest_validates_strictly() -> None:
    manifests = sorted(KUBERNETES.glob("*.yaml"))
    assert manifests
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", *map(str, manifests)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_refuses_a_misspelt_field(tmp_path: Path) -> None:
    """The check above could pass by validating nothing: it does catch a wrong field."""
    web = yaml.safe_load_all((KUBERNETES / "web.yaml").read_text())
    deployment = next(doc for doc in web if doc["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(deployment))
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "imagePullPolicyy" in result.stdout + result.stderr


def _workloads() -> list[dict]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return [doc for doc in documents if doc["kind"] in ("Deployment", "Job")]


def test_every_workload_runs_locked_down_and_keeps_its_keys_private() -> None:
    """Non-root, read-only root, no privilege escalation, and the keys reach cofre as
    a 0600 copy the pod's user owns (cofre refuses a key file its group can read)."""
    workloads = _workloads()
    assert {w["metadata"]["name"] for w in workloads} == {
        "cofre-web",
        "cofre-scheduler",
        "cofre-init",
    }
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["initContainers"] + pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
        keys = next(v for v in pod["volumes"] if v["name"] == "keys")
        assert keys["emptyDir"]["medium"] == "Memory"
        assert "chmod 0600" in pod["initContainers"][0]["command"][-1]
        scheduler_replicas = workload["spec"].get("replicas")
        if workload["metadata"]["name"] == "cofre-scheduler":
            assert scheduler_replicas == 1
            assert workload["spec"]["strategy"]["type"] == "Recreate"
