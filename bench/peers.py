"""The peers a user would pick instead of cofre: their venvs, model files and commands.

Each peer is installed by this module, from the package registry with pip, into
its own virtual environment under bench/.peers/ (gitignored; reused while its
requirement list is unchanged), with scikit-learn and numpy pinned to the
versions of the venv running the benchmark, so that every server loads the very
same fitted estimators. Nothing here starts a process: run.py does, in its own
process group.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".peers"
# The newest releases that install here. mlflow 3.18.0 could not be installed when
# this was written (its mlflow-tracing==3.18.0 was not on the registry).
MLSERVER_VERSION = "1.7.1"
MLFLOW_VERSION = "3.17.2"


@dataclass(frozen=True)
class Venv:
    """A peer's own virtual environment."""

    name: str
    requirements: tuple[str, ...]

    @property
    def path(self) -> Path:
        return CACHE / self.name

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def ensure(self) -> Venv:
        """Create and fill the venv unless it already holds exactly these requirements."""
        marker = self.path / "bench-requirements.txt"
        wanted = "\n".join(self.requirements) + "\n"
        if marker.exists() and marker.read_text() == wanted:
            return self
        print(f"installing {self.name}: {' '.join(self.requirements)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(self.path)], check=True)
        pip = [str(self.bin / "python"), "-m", "pip", "install", "-q"]
        log = CACHE / f"{self.name}.pip.log"
        with log.open("w") as out:
            for step in (["--upgrade", "pip>=24"], list(self.requirements)):
                if subprocess.run([*pip, *step], stdout=out, stderr=out, check=False).returncode:
                    raise SystemExit(f"pip install for {self.name} failed; see {log}")
        marker.write_text(wanted)
        return self

    def versions(self, *packages: str) -> dict[str, str]:
        """Installed versions of `packages` in this venv (for the report)."""
        code = (
            "import importlib.metadata as m, json, sys;"
            "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
        )
        done = subprocess.run(
            [str(self.bin / "python"), "-c", code, *packages],
            capture_output=True,
            text=True,
            check=True,
        )
        found: dict[str, str] = json.loads(done.stdout)
        return found


def _pinned() -> tuple[str, ...]:
    import numpy
    import sklearn

    return (f"scikit-learn=={sklearn.__version__}", f"numpy=={numpy.__version__}")


def mlserver_venv(version: str = MLSERVER_VERSION) -> Venv:
    # uvloop 0.22 makes MLServer 1.7's parallel workers die at start ("There is no
    # current event loop"); 0.21 is what MLServer was released against.
    requirements = (f"mlserver=={version}", f"mlserver-sklearn=={version}", "uvloop<0.22")
    return Venv(f"mlserver-{version}", requirements + _pinned())


def mlflow_venv(version: str = MLFLOW_VERSION) -> Venv:
    return Venv(f"mlflow-{version}", (f"mlflow=={version}", *_pinned()))


# -- MLServer ------------------------------------------------------------------------
def mlserver_repository(
    directory: Path, joblib_files: dict[str, Path], ports: dict[str, int], workers: int
) -> Path:
    """A model repository: settings.json (server) and one model-settings.json per model.

    `debug: false` is MLServer's production setting: it turns off uvicorn's access
    log, as the floor has none. Every port (HTTP, gRPC, metrics) is on 127.0.0.1.
    """
    directory.mkdir(parents=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": ports["http"],
        "grpc_port": ports["grpc"],
        "metrics_port": ports["metrics"],
        "parallel_workers": workers,
        "debug": False,
    }
    (directory / "settings.json").write_text(json.dumps(settings, indent=2))
    for name, source in joblib_files.items():
        model_dir = directory / name
        model_dir.mkdir()
        (model_dir / "model.joblib").write_bytes(source.read_bytes())
        model_settings = {
            "name": name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib"},
        }
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return directory


def mlserver_argv(venv: Venv, repository: Path) -> list[str]:
    return [str(venv.bin / "mlserver"), "start", str(repository)]


# -- MLflow --------------------------------------------------------------------------
def mlflow_model(venv: Venv, joblib_file: Path, out: Path, proba: bool) -> Path:
    """An MLflow model directory saved by `mlflow.sklearn.save_model` in MLflow's venv."""
    argv = [str(venv.bin / "python"), str(BENCH / "mlflow_save.py"), str(joblib_file), str(out)]
    subprocess.run([*argv, "--proba"] if proba else argv, check=True)
    return out


def mlflow_argv(venv: Venv, model_dir: Path, port: int, workers: int) -> list[str]:
    return [
        str(venv.bin / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model_dir),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(workers),
        "--env-manager",
        "local",
    ]


# uvicorn (which `mlflow models serve` runs) reads UVICORN_* variables for its
# options: no access log, as the floor and MLServer have none.
MLFLOW_ENV = {"UVICORN_ACCESS_LOG": "false"}
