"""The serving benchmark: the floor vs cofre on SQLite vs cofre on PostgreSQL, one run.

    .venv/bin/python bench/run.py            # ~8 minutes on 2 cores; prints a table

Trains the models, serves them three ways under the same Gunicorn settings on
127.0.0.1, drives each with `wrk` (installed with apt-get when missing) and
checks after every cofre run that each 2xx answer has exactly one prediction
audit record and that `cofre audit verify` passes. See bench/README.md.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
PREDICT_LINE = re.compile(r'"POST /api/v1/models/[^ ]+/predict[^ ]* HTTP/1\.1" (\d{3})')


@dataclass(frozen=True)
class Scenario:
    key: str  # "lr-1", "lr-100", "rf-1"
    model: str  # the name both servers serve it under
    rows: int


SCENARIOS = (
    Scenario("lr-1", "lr-pipeline", 1),
    Scenario("lr-100", "lr-pipeline", 100),
    Scenario("rf-1", "rf-100", 1),
)


@dataclass
class Result:
    server: str
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
    served_2xx: int  # from the server's access log
    cpu_ms: float  # CPU time of master + workers per 2xx answer (steadier than req/s on a busy box)
    audited: int | None = None  # prediction records with outcome "ok" added by the run
    audited_other: int | None = None  # prediction records with any other outcome
    notes: list[str] = field(default_factory=list)


# -- the models and the request bodies ------------------------------------------------
def build_models(directory: Path) -> dict[str, Path]:
    """Train both estimators on breast cancer (30 features), write skops files and bodies."""
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
    for name, estimator in estimators.items():
        sio.dump(estimator.fit(features, target), directory / f"{name}.skops")
    records = features.to_dict(orient="records")
    bodies = {}
    for scenario in SCENARIOS:
        path = directory / f"{scenario.key}.json"
        path.write_text(json.dumps({"instances": records[: scenario.rows]}))
        bodies[scenario.key] = path
    return bodies


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


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    token: str = ""
    database_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def pids(self) -> list[int]:
        """The Gunicorn master (the process we started: `cofre serve` execs) and its workers."""
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [master, *map(int, children)]

    def memory_mb(self) -> tuple[float, float]:
        """(sum of RSS, sum of PSS) over master and workers, in MiB."""
        rss = pss = 0
        for pid in self.pids():
            rss += _kib(Path(f"/proc/{pid}/status"), "VmRSS:")
            pss += _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:")
        return rss / 1024, pss / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of master and workers."""
        ticks = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def served(self) -> int:
        """2xx answers to prediction POSTs in the access log (written even if the client left)."""
        text = self.log.read_text(errors="replace")
        return sum(1 for m in PREDICT_LINE.finditer(text) if m.group(1).startswith("2"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _kib(path: Path, label: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(label):
            return int(line.split()[1])
    return 0


def start(name: str, argv: list[str], env: dict[str, str], port: int, workdir: Path) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    return Server(name, port, process, log, env=env)


def wait_ready(server: Server, model: str, body: Path, deadline_s: float = 60) -> None:
    """Poll with a real prediction until one succeeds (models load lazily in cofre)."""
    deadline = time.monotonic() + deadline_s
    url = f"http://127.0.0.1:{server.port}/api/v1/models/{model}/predict"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited; see {server.log}")
        request = urllib.request.Request(url, data=body.read_bytes(), method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {server.token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - http://127.0.0.1
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{server.name} not ready after {deadline_s}s; see {server.log}")


# -- the three servers ----------------------------------------------------------------
def start_floor(workdir: Path, models: Path, workers: int) -> Server:
    port = free_port()
    env = clean_env(
        COFRE_HOME=str(workdir / "floor-home"),
        BENCH_MODEL_DIR=str(models),
        PYTHONPATH=f"{BENCH}{os.pathsep}{ROOT}",
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
    return start("floor", argv, env, port, workdir)


def start_cofre(name: str, workdir: Path, models: Path, workers: int, url: str | None) -> Server:
    home = workdir / f"{name}-home"
    env = clean_env(COFRE_HOME=str(home))
    if url:
        env["COFRE_DATABASE_URL"] = url
    cofre(env, "init")
    for model in ("lr-pipeline", "rf-100"):
        cofre(
            env,
            "models",
            "publish",
            str(models / f"{model}.skops"),
            "--name",
            model,
            "--purpose",
            "Benchmark: measure serving overhead",
            "--legal-basis",
            "Not applicable: public benchmark data",
            "--alias",
            "production",
        )
    # Labels only: the floor returns `predict` alone, so cofre must not add predict_proba.
    key = json.loads(cofre(env, "keys", "create", "--name", "bench", "--role", "predictor",
                           "--labels-only", "--json"))  # fmt: skip
    port = free_port()
    argv = [str(VENV_BIN / "cofre"), "serve", "--bind", f"127.0.0.1:{port}"]
    server = start(name, [*argv, "--workers", str(workers)], env, port, workdir)
    server.token = key["secret"]
    server.database_url = url or f"sqlite:///{home / 'cofre.db'}"
    return server


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


# -- measuring ------------------------------------------------------------------------
def wrk(server: Server, scenario: Scenario, body: Path, concurrency: int, seconds: int) -> dict:
    url = f"http://127.0.0.1:{server.port}/api/v1/models/{scenario.model}/predict"
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    env = dict(os.environ, BENCH_BODY=str(body), BENCH_TOKEN=server.token)
    done = subprocess.run(
        [*argv, "-s", str(BENCH / "post.lua"), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
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


def settle(server: Server, audit: AuditCounter | None, quiet_s: float = 1.0) -> None:
    """Wait until the server has finished what wrk left in flight (counts stop moving)."""
    deadline = time.monotonic() + 30
    last: tuple[int, Any] = (-1, None)
    while time.monotonic() < deadline:
        now = (server.served(), audit.counts() if audit else None)
        if now == last:
            return
        last = now
        time.sleep(quiet_s)


def measure(
    server: Server,
    audit: AuditCounter | None,
    scenario: Scenario,
    body: Path,
    concurrency: int,
    seconds: int,
) -> Result:
    settle(server, audit)
    served_before = server.served()
    audit_before = audit.counts() if audit else (0, 0)
    cpu_before = server.cpu_seconds()
    out = wrk(server, scenario, body, concurrency, seconds)
    settle(server, audit)
    rss, pss = server.memory_mb()
    served = server.served() - served_before
    cpu_ms = (server.cpu_seconds() - cpu_before) * 1000 / max(served, 1)
    wrk_2xx = out["requests"] - out["non2xx"]
    result = Result(
        server=server.name,
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
        cpu_ms=cpu_ms,
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
    servers: list[Server], bodies: dict[str, Path], args: argparse.Namespace
) -> list[Result]:
    """Every cell (scenario, concurrency) runs on each server back to back, so a change
    in the machine's background load hits the floor and cofre alike."""
    audits = {s.name: AuditCounter(s.database_url) for s in servers if s.database_url}
    results = []
    try:
        for scenario in SCENARIOS:
            for server in servers:
                wait_ready(server, scenario.model, bodies[scenario.key])
                # Warm every worker: each loads (and, in cofre, decrypts) the model once.
                wrk(server, scenario, bodies[scenario.key], 8, args.warmup)
            for concurrency in args.concurrency:
                for server in servers:
                    result = measure(
                        server,
                        audits.get(server.name),
                        scenario,
                        bodies[scenario.key],
                        concurrency,
                        args.duration,
                    )
                    print("  " + row(result, None), flush=True)
                    results.append(result)
    finally:
        for audit in audits.values():
            audit.close()
    return results


# -- reporting ------------------------------------------------------------------------
HEADER = (
    "| scenario | c | server | req/s | p50 ms | p99 ms | CPU ms/req | RSS MiB | PSS MiB "
    "| req/s vs floor | p99 vs floor | audit check |\n"
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def row(result: Result, floor: Result | None) -> str:
    ratio = p99 = ""
    if floor and result.server != "floor":
        ratio = f"{result.rps / floor.rps:.2f}"
        p99 = f"{result.p99_ms / floor.p99_ms:.2f}"
    if result.audited is None:
        audit = "-"
    else:
        audit = f"{result.audited} = {result.served_2xx} served; wrk {result.wrk_2xx}"
    if result.notes:
        audit += " **" + "; ".join(result.notes) + "**"
    return (
        f"| {result.scenario} | {result.concurrency} | {result.server} | {result.rps:.0f} "
        f"| {result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.cpu_ms:.1f} "
        f"| {result.rss_mb:.0f} | {result.pss_mb:.0f} "
        f"| {ratio} | {p99} | {audit} |"
    )


def table(results: list[Result]) -> str:
    floors = {(r.scenario, r.concurrency): r for r in results if r.server == "floor"}
    lines = [HEADER]
    for scenario in SCENARIOS:
        for server in ("floor", "sqlite", "postgres"):
            for r in results:
                if (r.scenario, r.server) == (scenario.key, server):
                    lines.append(row(r, floors.get((r.scenario, r.concurrency))))
    return "\n".join(lines)


def targets(results: list[Result]) -> list[str]:
    """The issue's targets at concurrency 8, one line each, met or MISSED."""
    at = {(r.server, r.scenario): r for r in results if r.concurrency == 8}
    lines = []
    for server in ("sqlite", "postgres"):
        pairs = [("lr-1", "rps", 0.6), ("lr-1", "p99", 2.0), ("rf-1", "rps", 0.9)]
        for scenario, what, bound in pairs:
            floor, mine = at.get(("floor", scenario)), at.get((server, scenario))
            if not (floor and mine):
                continue
            if what == "rps":
                value, met = mine.rps / floor.rps, mine.rps / floor.rps >= bound
                goal = f">= {bound}"
            else:
                value, met = mine.p99_ms / floor.p99_ms, mine.p99_ms / floor.p99_ms <= bound
                goal = f"<= {bound}"
            state = "met" if met else "MISSED"
            lines.append(f"{server} {scenario} c=8 {what}/floor = {value:.2f} ({goal}): {state}")
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
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') // 2**30} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("\n")[0].strip(),
    }


def gunicorn_settings() -> str:
    """The worker class and threads both servers ran with (cofre's config module)."""
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
    parser.add_argument("--workers", type=int, default=2, help="Gunicorn workers, every server")
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64]
    )
    parser.add_argument(
        "--servers", default="floor,sqlite,postgres", help="any of floor,sqlite,postgres"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"
        ),
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="cofre-bench-"))
    print(f"work directory {workdir}; {args.workers} workers; {args.duration}s per run")
    bodies = build_models(workdir / "models")
    wanted = args.servers.split(",")
    servers: list[Server] = []
    verified: dict[str, bool] = {}
    load_before = os.getloadavg()
    try:
        with contextlib.ExitStack() as stack:
            try:
                if "floor" in wanted:
                    servers.append(start_floor(workdir, workdir / "models", args.workers))
                if "sqlite" in wanted:
                    servers.append(
                        start_cofre("sqlite", workdir, workdir / "models", args.workers, None)
                    )
                if "postgres" in wanted:
                    url = stack.enter_context(postgres_database(args.postgres_url))
                    servers.append(
                        start_cofre("postgres", workdir, workdir / "models", args.workers, url)
                    )
                results = bench_all(servers, bodies, args)
                verified = {s.name: verify(s) for s in servers if s.database_url}
            finally:
                for server in servers:
                    server.stop()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "machine": machine(),
        "workers": args.workers,
        "gunicorn": gunicorn_settings(),
        "duration_s": args.duration,
        "load average before/after": f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f}",
    }
    print("\n" + "\n".join(f"{k}: {v}" for k, v in report.items()))
    print("\n" + table(results) + "\n")
    for line in targets(results):
        print(line)
    broken = [r for r in results if r.notes] + [s for s, ok in verified.items() if not ok]
    print("audit checks: " + ("all passed" if not broken else f"FAILED ({len(broken)})"))
    if args.json:
        report |= {"results": [asdict(r) for r in results], "verified": verified}
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
