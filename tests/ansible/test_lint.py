"""The playbook passes ansible-lint's production profile and a syntax check per inventory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ansible, pytest.mark.timeout(300)]

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "NO_COLOR": "1"}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ANSIBLE_DIR, env=ENV, capture_output=True, text=True, check=False, timeout=280
    )


def test_ansible_lint_production_profile_passes() -> None:
    result = _run(str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]


@pytest.mark.parametrize("inventory", ["single-node", "multi-node"])
def test_syntax_check_passes(inventory: str) -> None:
    result = _run(
        str(BIN / "ansible-playbook"),
        "--syntax-check",
        "-i",
        f"inventories/{inventory}/hosts.yml",
        "site.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_variable_is_documented_in_its_argument_spec() -> None:
    import yaml

    for role in sorted((ANSIBLE_DIR / "roles").iterdir()):
        defaults = yaml.safe_load((role / "defaults/main.yml").read_text())
        spec = yaml.safe_load((role / "meta/argument_specs.yml").read_text())
        documented = set(spec["argument_specs"]["main"]["options"])
        assert set(defaults) <= documented, (role.name, set(defaults) - documented)
        assert all(name.startswith(f"{role.name}_") for name in defaults), role.name
