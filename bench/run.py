"""The serving benchmark: cofre against the servers a user would pick instead, one run.

    .venv/bin/python bench/run.py            # prints a table; see bench/README.md

Trains the models, installs the peers (MLServer with mlserver-sklearn, MLflow)
into their own venvs under bench/.peers/, starts every server on 127.0.0.1 with
the same number of workers, checks each one's answers against the estimator,
drives each with the same `wrk` (installed with apt-get when missing), cell by
cell back to back, and checks after every cofre run that each 2xx answer has
exactly one prediction audit record and, at the end, that `cofre audit verify`
passes. Then the memory scenario: 20 model versions resident in cofre.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import peers

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
NATIVE_LINE = re.compile(r'"POST /api/v1/models/[^ ]+/predict[^ ]* HTTP/1\.1" (\d{3})')
V2_LINE = re.compile(r'"POST /v2/models/[^ ]+/infer[^ ]* HTTP/1\.1" (\d{3})')
ALL_TARGETS = ("floor", "mlserver", "mlflow", "sqlite", "sqlite-v2", "postgres")
MODELS = ("lr-pipeline", "rf-100")


@dataclass(frozen=True)
class Scenario:
    key: str  # "lr-1", "lr-100", "rf-1"
    model: str  # the name every server serves it under
    rows: int


SCENARIOS = (
    Scenario("lr-1", "lr-pipeline", 1),
    Scenario("lr-100", "lr-pipeline", 100),
    Scenario("rf-1", "rf-100", 1),
)


@dataclass
class Result:
    target: str
    scenario: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    pss_mb: float
    wrk_2xx: int
    non2xx: int
    socket_errors: int
    served_2xx: int | None  # from the server's access log (cofre), None where there is none
    cpu_ms: float  # CPU time of every server process per 2xx answer
    cores: float  # CPU seconds the server used per second of the cell
    processes: int
    audited: int | None = None  # prediction records with outcome "ok" added by the run
    audited_other: int | None = None  # prediction records with any other outcome
    notes: list[str] = field(default_factory=list)
    round: int = 1  # of --rounds: the same cell measured again, after every other target's
    spread: str = ""  # with --rounds: the req/s of every round, lowest to highest


def medians(results: list[Result]) -> list[Result]:
    """Per cell, the round whose req/s is the median (all its figures from that one
    run, not a blend), its spread noted: this machine's speed drifts by a third from
    minute to minute, and the rounds interleave every target so drift hits all alike.
    Audit notes of every round are kept."""
    cells: dict[tuple[str, str, int], list[Result]] = {}
    for result in results:
        cells.setdefault((result.target, result.scenario, result.concurrency), []).append(result)
    chosen = []
    for rounds in cells.values():
        ranked = sorted(rounds, key=lambda r: r.rps)
        median = replace(ranked[(len(ranked) - 1) // 2])
        median.notes = [note for r in rounds for note in r.notes]
        if len(rounds) > 1:
            median.spread = "/".join(f"{r.rps:.0f}" for r in ranked)
        chosen.append(median)
    return chosen


# -- the models, the rows and the bodies ----------------------------------------------
@dataclass
class Workload:
    """Model files for every server, one body per protocol and scenario, the answers."""

    directory: Path
    joblib_files: dict[str, Path]
    bodies: dict[tuple[str, str], Path]  # (protocol, scenario) -> body file
    labels: dict[str, list[Any]]  # scenario -> the estimator's labels for its rows
    proba: dict[str, list[list[float]]]  # scenario -> the estimator's probabilities
    classes: dict[str, list[Any]]  # scenario -> the estimator's classes_


def build_workload(directory: Path, proba: bool) -> Workload:
    """Train both estimators on breast cancer (30 features); write skops files (floor,
    cofre), joblib files (MLServer, MLflow) and the same rows in each protocol's body."""
    import joblib
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    directory.mkdir(parents=True)
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    estimators = {
        "lr-pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "rf-100": RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1),
    }
    joblib_files = {}
    for name, estimator in estimators.items():
        estimator.fit(features, target)
        sio.dump(estimator, directory / f"{name}.skops")
        joblib_files[name] = directory / f"{name}.joblib"
        joblib.dump(estimator, joblib_files[name])
    work = Workload(directory, joblib_files, {}, {}, {}, {})
    columns = list(features.columns)
    for scenario in SCENARIOS:
        rows = features.iloc[: scenario.rows]
        estimator = estimators[scenario.model]
        work.labels[scenario.key] = estimator.predict(rows).tolist()
        work.proba[scenario.key] = estimator.predict_proba(rows).tolist()
        work.classes[scenario.key] = estimator.classes_.tolist()
        for protocol, body in _bodies(rows, columns, proba).items():
            path = directory / f"{scenario.key}.{protocol}.json"
            path.write_text(json.dumps(body))
            work.bodies[(protocol, scenario.key)] = path
    return work


def _bodies(rows: Any, columns: list[str], proba: bool) -> dict[str, Any]:
    """The same rows as each protocol carries them, the way its own clients send them."""
    values = rows.to_numpy(dtype=float)
    outputs = [{"name": "predict"}] + ([{"name": "predict_proba"}] if proba else [])
    return {
        # floor and cofre's native door
        "native": {"instances": rows.to_dict(orient="records")},
        # Open Inference Protocol (MLServer, cofre's /v2 door): one FP64 [rows, 30] tensor
        "v2": {
            "inputs": [
                {
                    "name": "input-0",
                    "datatype": "FP64",
                    "shape": list(values.shape),
                    "data": values.ravel().tolist(),
                }
            ],
            "outputs": outputs,
        },
        # MLflow's scoring protocol, the body `mlflow models serve` documents first
        "mlflow": {"dataframe_split": {"columns": columns, "data": values.tolist()}},
    }


def answers_of(protocol: str, answer: dict[str, Any]) -> tuple[list[Any], Any]:
    """(labels, probabilities or None) from one answer, whatever its protocol."""
    if protocol == "v2":
        outputs = {o["name"]: o for o in answer["outputs"]}
        proba = outputs.get("predict_proba")
        if proba is not None:
            width = proba["shape"][1]
            data = proba["data"]
            proba = [data[i : i + width] for i in range(0, len(data), width)]
        labels = outputs["predict"]["data"] if "predict" in outputs else None
        return labels, proba
    predictions = answer["predictions"]
    if protocol == "mlflow" and predictions and isinstance(predictions[0], list):
        # MLflow serving predict_proba: probabilities only; labels are their argmax.
        return [max(range(len(p)), key=p.__getitem__) for p in predictions], predictions
    return predictions, answer.get("probabilities")


# -- processes ------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any COFRE_* of the caller's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFRE_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cofre(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "cofre"), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"cofre {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def process_tree(root: int) -> list[int]:
    """`root` and every live descendant (children of any of its threads)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


@dataclass
class Server:
    """One server process group we started, on 127.0.0.1:`port`."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def memory_mb(self) -> tuple[float, float]:
        """(sum of RSS, sum of PSS) over every process of the server, in MiB."""
        rss = pss = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                rss += _kib(Path(f"/proc/{pid}/status"), "VmRSS:")
                pss += _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:")
        return rss / 1024, pss / 1024

    def pss_by_process(self) -> dict[int, float]:
        return {p: _kib(Path(f"/proc/{p}/smaps_rollup"), "Pss:") / 1024 for p in self.pids()}

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of every process of the server."""
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def served(self, line: re.Pattern[str]) -> int:
        """2xx answers in the access log (written even if the client left)."""
        text = self.log.read_text(errors="replace")
        return sum(1 for m in line.finditer(text) if m.group(1).startswith("2"))

    def stop(self) -> None:
        """SIGTERM to the process we started (it stops its own workers), then SIGKILL
        to whatever is left of its process group once it is gone or after 40 s."""
        group = self.process.pid  # started with start_new_session: pgid == pid
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=40)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # stragglers (workers of a dead master)
        self.process.wait()


def _kib(path: Path, label: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(label):
            return int(line.split()[1])
    return 0


def start(
    name: str, argv: list[str], env: dict[str, str], port: int, workdir: Path, cwd: Path = ROOT
) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
    return Server(name, port, process, log, env=env)


# -- the targets: one column each -----------------------------------------------------
@dataclass
class Target:
    """What one column measures: a server (MLflow: one per model) and its protocol."""

    name: str
    protocol: str  # "native" | "v2" | "mlflow"
    servers: dict[str, Server]  # model -> the server answering it
    token: str = ""
    access_line: re.Pattern[str] | None = None  # cofre: its access log's prediction lines
    database_url: str | None = None  # cofre: where its audit records go
    runtimes: dict[str, str] = field(default_factory=dict)  # scenario -> cofre's runtime
    query: str = ""  # added to every URL (the memory scenario's ?version=N)

    def url(self, scenario: Scenario) -> str:
        port = self.servers[scenario.model].port
        path = {
            "native": f"/api/v1/models/{scenario.model}/predict",
            "v2": f"/v2/models/{scenario.model}/infer",
            "mlflow": "/invocations",
        }[self.protocol]
        return f"http://127.0.0.1:{port}{path}{self.query}"

    def unique_servers(self) -> list[Server]:
        return list({id(s): s for s in self.servers.values()}.values())


def start_floor(workdir: Path, work: Workload, workers: int, proba: bool) -> Target:
    port = free_port()
    env = clean_env(
        BENCH_MODEL_DIR=str(work.directory),
        BENCH_PROBA="1" if proba else "0",
        PYTHONPATH=str(BENCH),
    )
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:floor_gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "floor_app:app",
    ]
    server = start("floor", argv, env, port, workdir)
    return Target("floor", "native", dict.fromkeys(MODELS, server))


def start_mlserver(workdir: Path, work: Workload, workers: int, venv: peers.Venv) -> Target:
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    repository = peers.mlserver_repository(
        workdir / "mlserver-repo", work.joblib_files, ports, workers
    )
    server = start(
        "mlserver",
        peers.mlserver_argv(venv, repository),
        clean_env(),
        ports["http"],
        workdir,
        cwd=repository,
    )
    return Target("mlserver", "v2", dict.fromkeys(MODELS, server))


def start_mlflow(
    workdir: Path, work: Workload, workers: int, venv: peers.Venv, proba: bool
) -> Target:
    """`mlflow models serve` serves one model: one server per model."""
    servers = {}
    for model in MODELS:
        model_dir = peers.mlflow_model(
            venv, work.joblib_files[model], workdir / f"mlflow-{model}", proba
        )
        port = free_port()
        argv = peers.mlflow_argv(venv, model_dir, port, workers)
        # As in an activated venv: MLflow runs `uvicorn` by name, through bash.
        env = clean_env(**peers.MLFLOW_ENV)
        env["PATH"] = f"{venv.bin}{os.pathsep}{env.get('PATH', '')}"
        servers[model] = start(f"mlflow-{model}", argv, env, port, workdir)
    return Target("mlflow", "mlflow", servers)


def start_cofre(
    name: str,
    workdir: Path,
    models: dict[str, Path],
    workers: int,
    url: str | None,
    proba: bool,
    extra_env: dict[str, str] | None = None,
    names: tuple[str, ...] = MODELS,
) -> Target:
    home = workdir / f"{name}-home"
    env = clean_env(COFRE_HOME=str(home), **(extra_env or {}))
    if url:
        env["COFRE_DATABASE_URL"] = url
    cofre(env, "init")
    for model, path in models.items():
        publish(env, path, model, alias=True)
    # Labels only unless --proba: the peers then return `predict` alone, so cofre
    # must not add predict_proba (twice the model work on the forest).
    labels_only = [] if proba else ["--labels-only"]
    key = json.loads(cofre(env, "keys", "create", "--name", "bench", "--role", "predictor",
                           *labels_only, "--json"))  # fmt: skip
    port = free_port()
    argv = [str(VENV_BIN / "cofre"), "serve", "--bind", f"127.0.0.1:{port}"]
    server = start(name, [*argv, "--workers", str(workers)], env, port, workdir)
    database_url = url or f"sqlite:///{home / 'cofre.db'}"
    return Target(
        name,
        "native",
        dict.fromkeys(names, server),
        token=key["secret"],
        access_line=NATIVE_LINE,
        database_url=database_url,
    )


def publish(env: dict[str, str], path: Path, model: str, alias: bool) -> None:
    cofre(
        env,
        "models",
        "publish",
        str(path),
        "--name",
        model,
        "--purpose",
        "Benchmark: measure serving overhead",
        "--legal-basis",
        "Not applicable: public benchmark data",
        *(["--alias", "production"] if alias else []),
    )


def cofre_v2(native: Target) -> Target:
    """cofre's Open Inference Protocol door on the same server (and audit log)."""
    return Target(
        f"{native.name}-v2",
        "v2",
        native.servers,
        token=native.token,
        access_line=V2_LINE,
        database_url=native.database_url,
    )


@contextlib.contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A throw-away database on the server of `base_url`, dropped on the way out."""
    import psycopg

    name = f"cofre_bench_{os.getpid()}"
    admin = base_url.replace("postgresql+psycopg://", "postgresql://").rstrip("/") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base_url.rstrip("/") + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- before the load: ready, and right ------------------------------------------------
def post(target: Target, scenario: Scenario, body: Path) -> tuple[int, bytes]:
    url = target.url(scenario)  # always http://127.0.0.1:PORT/...
    request = urllib.request.Request(url, data=body.read_bytes(), method="POST")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if target.token:
        request.add_header("Authorization", f"Bearer {target.token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - 127.0.0.1
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def check_answers(target: Target, scenario: Scenario, work: Workload, deadline_s: float) -> None:
    """Wait for a 200 (servers load models lazily or slowly), then compare the answer
    with the estimator's: labels equal, probabilities (where returned) within 1e-5."""
    body = work.bodies[(target.protocol, scenario.key)]
    deadline = time.monotonic() + deadline_s
    status, answer = 0, b""
    while time.monotonic() < deadline:
        for server in target.unique_servers():
            if server.process.poll() is not None:
                raise SystemExit(f"{server.name} exited; see {server.log}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            status, answer = post(target, scenario, body)
            if status == 200:
                break
        time.sleep(0.3)
    else:
        raise SystemExit(f"{target.name} not ready for {scenario.key}: {status} {answer[:300]!r}")
    decoded = json.loads(answer)
    labels, proba = answers_of(target.protocol, decoded)
    if target.protocol == "mlflow" and proba is not None:
        labels = [work.classes[scenario.key][i] for i in labels]
    if labels != work.labels[scenario.key]:
        raise SystemExit(f"{target.name} {scenario.key}: labels differ from the estimator's")
    if proba is not None:
        worst = max(
            abs(a - b)
            for got, want in zip(proba, work.proba[scenario.key], strict=True)
            for a, b in zip(got, want, strict=True)
        )
        if worst > 1e-5:
            raise SystemExit(f"{target.name} {scenario.key}: probabilities off by {worst:.2g}")
    if "runtime" in decoded:  # cofre names the runtime that answered (compiled inference)
        target.runtimes[scenario.key] = str(decoded["runtime"])


# -- measuring ------------------------------------------------------------------------
def wrk(
    target: Target,
    scenario: Scenario,
    body: Path,
    concurrency: int,
    seconds: int,
    delay_ms: int = 0,
) -> dict:
    """One wrk run; `delay_ms` pauses each connection between its requests."""
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    env = dict(os.environ, BENCH_BODY=str(body), BENCH_TOKEN=target.token)
    if delay_ms:
        env["BENCH_DELAY_MS"] = str(delay_ms)
    done = subprocess.run(
        [*argv, "-s", str(BENCH / "post.lua"), target.url(scenario)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    return dict(json.loads(line.removeprefix("BENCH_JSON ")))


class AuditCounter:
    """Counts prediction records straight from the database cofre writes to."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url)

    def counts(self) -> tuple[int, int]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            ok, other = conn.execute(
                text(
                    "SELECT"
                    " COALESCE(SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), 0),"
                    " COALESCE(SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END), 0)"
                    " FROM audit_records WHERE kind = 'prediction'"
                )
            ).one()
        return int(ok), int(other)

    def close(self) -> None:
        self.engine.dispose()


def settle(
    target: Target, server: Server, audit: AuditCounter | None, quiet_s: float = 1.0
) -> None:
    """Wait until the server has finished what wrk left in flight (counts stop moving)."""
    if target.access_line is None:
        time.sleep(quiet_s)  # nothing to count: give the last answers time to go out
        return
    deadline = time.monotonic() + 30
    last: tuple[int, Any] = (-1, None)
    while time.monotonic() < deadline:
        now = (server.served(target.access_line), audit.counts() if audit else None)
        if now == last:
            return
        last = now
        time.sleep(quiet_s)


def measure(
    target: Target,
    audit: AuditCounter | None,
    scenario: Scenario,
    body: Path,
    concurrency: int,
    seconds: int,
) -> Result:
    server = target.servers[scenario.model]
    settle(target, server, audit)
    served_before = server.served(target.access_line) if target.access_line else 0
    audit_before = audit.counts() if audit else (0, 0)
    cpu_before = server.cpu_seconds()
    out = wrk(target, scenario, body, concurrency, seconds)
    settle(target, server, audit)
    cpu = server.cpu_seconds() - cpu_before
    rss, pss = server.memory_mb()
    wrk_2xx = out["requests"] - out["non2xx"]
    served = server.served(target.access_line) - served_before if target.access_line else None
    result = Result(
        target=target.name,
        scenario=scenario.key,
        concurrency=concurrency,
        rps=wrk_2xx / (out["duration_us"] / 1e6),
        p50_ms=out["p50_us"] / 1000,
        p99_ms=out["p99_us"] / 1000,
        rss_mb=rss,
        pss_mb=pss,
        wrk_2xx=wrk_2xx,
        non2xx=out["non2xx"],
        socket_errors=out["connect"] + out["read"] + out["write"] + out["timeout"],
        served_2xx=served,
        cpu_ms=cpu * 1000 / max(served if served is not None else wrk_2xx, 1),
        cores=cpu / (out["duration_us"] / 1e6),
        processes=len(server.pids()),
    )
    if audit:
        ok, other = audit.counts()
        result.audited, result.audited_other = ok - audit_before[0], other - audit_before[1]
    check(result)
    return result


def check(result: Result) -> None:
    """Record (and print) every broken expectation; the run goes on and exits non-zero."""
    if result.non2xx or result.socket_errors:
        result.notes.append(f"non-2xx {result.non2xx}, socket errors {result.socket_errors}")
    if result.audited is None:
        return
    if result.audited_other:
        result.notes.append(f"{result.audited_other} prediction records not 'ok'")
    if result.audited != result.served_2xx:
        result.notes.append(f"audited {result.audited} != served 2xx {result.served_2xx}")
    if result.audited != result.wrk_2xx:
        # wrk stops its clock with requests in flight: the server still answers (and
        # audits) them, but wrk has closed the socket and does not count them.
        cut = result.audited - result.wrk_2xx
        if not 0 < cut <= result.concurrency:
            result.notes.append(f"audited {result.audited} != wrk 2xx {result.wrk_2xx}")


def verify(server: Server) -> bool:
    done = subprocess.run(
        [str(VENV_BIN / "cofre"), "audit", "verify", "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
        said = f"checked {report.get('checked')}, bad_seq {report.get('bad_seq')}"
    except ValueError:
        said = (done.stdout + done.stderr).strip()
    print(f"cofre audit verify ({server.name}): exit {done.returncode}, {said}")
    return done.returncode == 0


def bench_all(
    targets: list[Target], work: Workload, scenarios: list[Scenario], args: argparse.Namespace
) -> list[Result]:
    """Every cell (scenario, concurrency) runs on each target back to back, so a change
    in the machine's background load hits the floor, the peers and cofre alike."""
    audits = {t.name: AuditCounter(t.database_url) for t in targets if t.database_url}
    results = []
    try:
        for scenario in scenarios:
            for target in targets:
                check_answers(target, scenario, work, args.ready_timeout)
                # Warm every worker: each loads (cofre: decrypts) the model once.
                body = work.bodies[(target.protocol, scenario.key)]
                wrk(target, scenario, body, 8, args.warmup)
            for concurrency in args.concurrency:
                for round_ in range(1, args.rounds + 1):
                    for target in targets:
                        body = work.bodies[(target.protocol, scenario.key)]
                        result = measure(
                            target, audits.get(target.name), scenario, body, concurrency,
                            args.duration,
                        )  # fmt: skip
                        result.round = round_
                        print("  " + row(result, None, None), flush=True)
                        results.append(result)
    finally:
        for audit in audits.values():
            audit.close()
    return results


# -- the memory scenario: 20 versions resident ----------------------------------------
def memory_scenario(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """20 versions of one model resident in cofre (2 workers), then one more of each kind.

    Versions alternate a logistic pipeline and a RandomForest(100), each fitted
    anew (distinct C, distinct seed); every version is called through the native
    door with `?version=N`, once until it answers, then by wrk (8 connections for
    2 s, so both workers load it); all of it twice: PSS must not move in the
    second round if all 20 stayed resident in both workers.
    The model cache is raised to 32 for this (cofre's default keeps 8 per worker).
    """
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    directory = workdir / "memory-models"
    directory.mkdir()
    for version in range(1, 23):
        forest = version % 2 == 0
        estimator = (
            RandomForestClassifier(n_estimators=100, random_state=version, n_jobs=1)
            if forest
            else make_pipeline(StandardScaler(), LogisticRegression(C=0.1 * version, max_iter=1000))
        )
        sio.dump(estimator.fit(features, target), directory / f"v{version}.skops")
    # Version 21 is a logistic pipeline, 22 a forest: "one more" of each kind.
    resident = start_cofre(
        "memory", workdir, {}, args.workers, None, proba=False,
        extra_env={"COFRE_MODEL_CACHE_SIZE": "32"}, names=("mem",),
    )  # fmt: skip
    server = resident.servers["mem"]
    audit = AuditCounter(str(resident.database_url))
    try:
        for version in range(1, 23):
            publish(server.env, directory / f"v{version}.skops", "mem", alias=version == 1)
        body = workdir / "memory-body.json"
        body.write_text(json.dumps({"instances": features.iloc[:1].to_dict(orient="records")}))
        report: dict[str, Any] = {"workers": args.workers, "model_cache_size": 32}
        scenario = Scenario("mem", "mem", 1)
        _wait_healthy(server, args.ready_timeout)
        time.sleep(1)
        report["pss_mb_idle"] = server.memory_mb()[1]
        # The first version of each kind also brings in code (scikit-learn's modules)
        # and the threads' malloc arenas grow with the first requests: measured apart.
        for versions, label in (
            (range(1, 3), "pss_mb_2"),
            (range(3, 21), "pss_mb_20"),
            (range(1, 21), "pss_mb_20_again"),
        ):
            for version in versions:
                _load_version(resident, scenario, body, version, args.ready_timeout)
            settle(resident, server, audit)
            report[label] = server.memory_mb()[1]
        report["pss_by_process_mb_20"] = {
            str(p): round(v, 1) for p, v in server.pss_by_process().items()
        }
        for version, label in ((21, "pss_mb_21_lr"), (22, "pss_mb_22_rf")):
            _load_version(resident, scenario, body, version, args.ready_timeout)
            settle(resident, server, audit)
            report[label] = server.memory_mb()[1]
        report["per_version_mb_3_to_20"] = (report["pss_mb_20"] - report["pss_mb_2"]) / 18
        report["one_more_lr_mb"] = report["pss_mb_21_lr"] - report["pss_mb_20_again"]
        report["one_more_rf_mb"] = report["pss_mb_22_rf"] - report["pss_mb_21_lr"]
        report["kinds"] = "odd versions lr-pipeline, even versions rf-100"
        report["verified"] = verify(server)
        return report
    finally:
        audit.close()
        server.stop()


def _wait_healthy(server: Server, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited; see {server.log}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            url = f"http://127.0.0.1:{server.port}/healthz"
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.3)
    raise SystemExit(f"{server.name} not healthy after {deadline_s}s; see {server.log}")


def _load_version(
    target: Target, scenario: Scenario, body: Path, version: int, deadline_s: float
) -> None:
    """One answer from `version` (loads it in one worker), then 2 s of wrk (both)."""
    pinned = replace(target, query=f"?version={version}")
    deadline = time.monotonic() + deadline_s
    while True:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            if post(pinned, scenario, body)[0] == 200:
                break
        if time.monotonic() > deadline:
            raise SystemExit(f"memory scenario: version {version} does not answer")
        time.sleep(0.3)
    # A worker loading the version may answer nothing within the 2 s (wrk then
    # drops the requests it sent; the server still answers them): the caller
    # settles before it measures. An error answer, though, stops the scenario.
    out = wrk(pinned, scenario, body, 8, 2)
    if out["non2xx"]:
        raise SystemExit(f"memory scenario: version {version} answered badly: {out}")


def memory_lines(report: dict[str, Any]) -> list[str]:
    return [
        f"cofre, {report['workers']} workers, before any request: "
        f"PSS {report['pss_mb_idle']:.0f} MiB; versions 1-2 (one of each kind) "
        f"resident: {report['pss_mb_2']:.0f} MiB",
        f"20 versions resident: PSS {report['pss_mb_20']:.0f} MiB "
        f"(second round {report['pss_mb_20_again']:.0f} MiB); versions 3-20: "
        f"{report['per_version_mb_3_to_20']:.1f} MiB each on average",
        f"one more logistic pipeline (21st): {report['one_more_lr_mb']:+.1f} MiB; "
        f"one more RandomForest(100) (22nd): {report['one_more_rf_mb']:+.1f} MiB",
    ]


# -- reporting ------------------------------------------------------------------------
HEADER = (
    "| scenario | c | server | req/s | p50 ms | p99 ms | CPU ms/req | cores | PSS MiB "
    "| req/s vs floor | req/s vs MLServer | p99 vs MLServer | CPU vs MLServer | audit check |\n"
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def _ratio(mine: float, theirs: Result | None, attribute: str) -> str:
    if theirs is None or not getattr(theirs, attribute):
        return ""
    return f"{mine / getattr(theirs, attribute):.2f}"


def row(result: Result, floor: Result | None, mlserver: Result | None) -> str:
    if result.target == "floor":
        floor = None
    if result.target == "mlserver":
        mlserver = None
    if result.audited is None:
        audit = "-"
    else:
        audit = f"{result.audited} = {result.served_2xx} served; wrk {result.wrk_2xx}"
    if result.spread:
        audit += f"; req/s of {result.spread.count('/') + 1} rounds {result.spread}"
    if result.notes:
        audit += " **" + "; ".join(result.notes) + "**"
    return (
        f"| {result.scenario} | {result.concurrency} | {result.target} | {result.rps:.0f} "
        f"| {result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.cpu_ms:.2f} "
        f"| {result.cores:.2f} | {result.pss_mb:.0f} | {_ratio(result.rps, floor, 'rps')} "
        f"| {_ratio(result.rps, mlserver, 'rps')} | {_ratio(result.p99_ms, mlserver, 'p99_ms')} "
        f"| {_ratio(result.cpu_ms, mlserver, 'cpu_ms')} | {audit} |"
    )


def table(results: list[Result], order: list[str]) -> str:
    by_cell = {(r.target, r.scenario, r.concurrency): r for r in results}
    lines = [HEADER]
    for scenario in SCENARIOS:
        for target in order:
            for r in results:
                if (r.scenario, r.target) == (scenario.key, target):
                    floor = by_cell.get(("floor", r.scenario, r.concurrency))
                    mlserver = by_cell.get(("mlserver", r.scenario, r.concurrency))
                    lines.append(row(r, floor, mlserver))
    return "\n".join(lines)


# Issue 13's targets at concurrency 8: (scenario, measure, against, bound).
TARGETS = (
    ("lr-1", "rps", "mlserver", ">=", 1.5),
    ("lr-1", "p99_ms", "mlserver", "<=", 1.0),
    ("lr-1", "cpu_ms", "mlserver", "<=", 0.6),
    ("lr-100", "rps", "mlserver", ">=", 1.0),
    ("rf-1", "rps", "floor", ">=", 3.0),
    ("rf-1", "rps", "mlserver", ">=", 5.0),
)
PSS_TARGET_MB = 1024


def targets(results: list[Result], memory: dict[str, Any] | None) -> list[str]:
    """Each target, met or MISSED, for every cofre column that ran at c=8."""
    at = {(r.target, r.scenario): r for r in results if r.concurrency == 8}
    lines = []
    for mine in ("sqlite", "postgres", "sqlite-v2"):
        for scenario, measure_, against, sense, bound in TARGETS:
            theirs, ours = at.get((against, scenario)), at.get((mine, scenario))
            if not (theirs and ours and getattr(theirs, measure_)):
                continue
            value = getattr(ours, measure_) / getattr(theirs, measure_)
            met = value >= bound if sense == ">=" else value <= bound
            state = "met" if met else "MISSED"
            name = {"rps": "req/s", "p99_ms": "p99", "cpu_ms": "CPU/req"}[measure_]
            lines.append(
                f"{mine} {scenario} c=8 {name} vs {against} = {value:.2f} "
                f"({sense} {bound}): {state}"
            )
    if memory:
        pss = memory["pss_mb_20"]
        state = "met" if pss <= PSS_TARGET_MB else "MISSED"
        lines.append(f"20 versions resident, PSS {pss:.0f} MiB (<= {PSS_TARGET_MB}): {state}")
    return lines


def machine() -> dict[str, str]:
    import sklearn

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') // 2**30} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("\n")[0].strip(),
        "cofre commit": commit.stdout.strip() or "?",
    }


def cofre_settings() -> str:
    """cofre's Gunicorn worker class and threads, from its config module."""
    from server import gunicorn_conf

    return f"{gunicorn_conf.worker_class}, {getattr(gunicorn_conf, 'threads', 1)} threads"


# -- the run --------------------------------------------------------------------------
def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("wrk missing: apt-get install -y wrk", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per model")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every cell this many times, interleaved; the table shows the median",
    )
    parser.add_argument("--workers", type=int, default=2, help="workers, every server")
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64]
    )
    parser.add_argument(
        "--servers", default=",".join(ALL_TARGETS), help="any of " + ",".join(ALL_TARGETS)
    )
    parser.add_argument(
        "--scenarios",
        default="lr-1,lr-100,rf-1,memory",
        help="any of lr-1,lr-100,rf-1 and memory (20 versions resident in cofre)",
    )
    parser.add_argument(
        "--proba",
        action="store_true",
        help="every server also returns class probabilities (default: labels only)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"
        ),
    )
    parser.add_argument("--mlserver-version", default=peers.MLSERVER_VERSION)
    parser.add_argument("--mlflow-version", default=peers.MLFLOW_VERSION)
    parser.add_argument("--ready-timeout", type=float, default=180, help="seconds per server")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    args.servers = [s for s in ALL_TARGETS if s in args.servers.split(",")]
    wanted = args.scenarios.split(",")
    args.memory = "memory" in wanted
    args.scenario_list = [s for s in SCENARIOS if s.key in wanted]
    return args


def start_targets(
    stack: contextlib.ExitStack, workdir: Path, work: Workload, args: argparse.Namespace
) -> list[Target]:
    """Every target asked for, each stopped by `stack` however the run ends."""
    targets_: list[Target] = []

    def keep(target: Target) -> Target:
        for server in target.unique_servers():
            stack.callback(server.stop)
        targets_.append(target)
        return target

    skops_files = {m: work.directory / f"{m}.skops" for m in MODELS}
    wanted, w = args.servers, args.workers
    if "floor" in wanted:
        keep(start_floor(workdir, work, w, args.proba))
    if "mlserver" in wanted:
        keep(start_mlserver(workdir, work, w, args.peer_venvs["mlserver"]))
    if "mlflow" in wanted:
        keep(start_mlflow(workdir, work, w, args.peer_venvs["mlflow"], args.proba))
    if "sqlite" in wanted or "sqlite-v2" in wanted:
        native = start_cofre("sqlite", workdir, skops_files, w, None, args.proba)
        for server in native.unique_servers():
            stack.callback(server.stop)
        if "sqlite" in wanted:
            targets_.append(native)
        if "sqlite-v2" in wanted:
            targets_.append(cofre_v2(native))
    if "postgres" in wanted:
        url = stack.enter_context(postgres_database(args.postgres_url))
        keep(start_cofre("postgres", workdir, skops_files, w, url, args.proba))
    return targets_


def peer_versions(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    found = {}
    if "mlserver" in args.peer_venvs:
        found["mlserver"] = args.peer_venvs["mlserver"].versions(
            "mlserver", "mlserver-sklearn", "uvloop", "uvicorn", "fastapi", "scikit-learn"
        )
    if "mlflow" in args.peer_venvs:
        found["mlflow"] = args.peer_venvs["mlflow"].versions(
            "mlflow", "uvicorn", "fastapi", "scikit-learn"
        )
    return found


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # unwinds: every server is stopped


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ensure_wrk()
    args.peer_venvs = {}
    if "mlserver" in args.servers and args.scenario_list:
        args.peer_venvs["mlserver"] = peers.mlserver_venv(args.mlserver_version).ensure()
    if "mlflow" in args.servers and args.scenario_list:
        args.peer_venvs["mlflow"] = peers.mlflow_venv(args.mlflow_version).ensure()
    workdir = Path(tempfile.mkdtemp(prefix="cofre-bench-"))
    print(f"work directory {workdir}; {args.workers} workers; {args.duration}s per run")
    work = build_workload(workdir / "models", args.proba)
    results: list[Result] = []
    verified: dict[str, bool] = {}
    memory: dict[str, Any] | None = None
    load_before = os.getloadavg()
    try:
        if args.scenario_list:
            with contextlib.ExitStack() as stack:
                targets_ = start_targets(stack, workdir, work, args)
                results = bench_all(targets_, work, args.scenario_list, args)
                cofres = {t.name: t for t in targets_ if t.database_url and t.protocol == "native"}
                verified = {n: verify(t.servers[MODELS[0]]) for n, t in cofres.items()}
                runtimes = {t.name: t.runtimes for t in targets_ if t.runtimes}
        else:
            runtimes = {}
        if args.memory:
            memory = memory_scenario(workdir, args)
            verified["memory"] = memory["verified"]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report: dict[str, Any] = {
        "machine": machine(),
        "workers": args.workers,
        "cofre gunicorn": cofre_settings(),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "answers": "labels and probabilities" if args.proba else "labels only",
        "peers": peer_versions(args),
        "load average before/after": f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f}",
    }
    if runtimes:
        report["cofre runtimes"] = runtimes
    print("\n" + "\n".join(f"{k}: {v}" for k, v in report.items()))
    shown = medians(results)
    if shown:
        print("\n" + table(shown, args.servers) + "\n")
    if memory:
        print("\n".join(memory_lines(memory)) + "\n")
    for line in targets(shown, memory):
        print(line)
    broken = [r for r in results if r.notes] + [s for s, ok in verified.items() if not ok]
    print("audit checks: " + ("all passed" if not broken else f"FAILED ({len(broken)})"))
    if args.json:
        report |= {
            "results": [asdict(r) for r in results],
            "memory": memory,
            "verified": verified,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
