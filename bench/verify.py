"""Audit verification at scale: N prediction records, then `cofre audit verify`, timed.

    .venv/bin/python bench/verify.py --records 1000000     # issue 13's target size
    .venv/bin/python bench/verify.py --records 20000       # a smoke run

The records are written the way the serving path writes them, minus HTTP: the
audit service of a cofre built by the one factory (`server.create_app`) chains
`AuditEvent`s shaped like the prediction core's success events (an API key as
actor, the native door, one breast-cancer row of 30 named floats with its label
and class probabilities sealed under the day's key, the details the core
records), `--batch` events per `append_many` transaction, as the group-commit
writer does under load. A share of the rows (`--subject-share`) is about a
person (a subject id from a pool, so per-subject keys and pseudonyms are in the
mix as in production). Then `cofre audit verify --json` runs as the operator
would run it (its progress bar on this terminal), and the wall time gives
records/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
MODEL = "lr-pipeline"


def cofre(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "cofre"), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"cofre {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def prepare_home(env: dict[str, str], workdir: Path) -> tuple[Any, Any]:
    """`cofre init`, publish the logistic pipeline; its rows and answers for the records."""
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    estimator.fit(features, target)
    path = workdir / f"{MODEL}.skops"
    sio.dump(estimator, path)
    cofre(env, "init")
    cofre(
        env, "models", "publish", str(path), "--name", MODEL, "--alias", "production",
        "--purpose", "Benchmark: audit verification", "--legal-basis", "Not applicable",
    )  # fmt: skip
    return features, estimator


def events(features: Any, estimator: Any, count: int, subject_share: float) -> Iterator[Any]:
    """`count` success events shaped like the prediction core's (one row each)."""
    from governance.accounts.actor import Actor
    from governance.audit.service import AuditEvent, PersonalRow

    rows = features.to_dict(orient="records")
    labels = estimator.predict(features).tolist()
    proba = estimator.predict_proba(features).tolist()
    actor = Actor(type="key", id="bench-key-0001", role="predictor", name="bench")
    sha256 = "0" * 64
    pool = max(count // 5, 1)
    chance = random.Random(0)
    path = f"/api/v1/models/{MODEL}/predict"
    for index in range(count):
        at = index % len(rows)
        subject = f"person-{chance.randrange(pool)}" if chance.random() < subject_share else None
        row = {"input": rows[at], "output": labels[at], "proba": proba[at]}
        yield AuditEvent(
            kind="prediction",
            actor=actor,
            outcome="ok",
            status=200,
            endpoint="native",
            request_id=uuid.uuid4().hex,
            model_name=MODEL,
            model_version=1,
            artifact_sha256=sha256,
            purpose="credit decision" if subject else None,
            rows=[PersonalRow(subject, row)],
            details={"rows": 1, "latency_ms": 3, "path": path, "explained": False},
        )


def fill(count: int, batch: int, subject_share: float, features: Any, estimator: Any) -> float:
    """Append `count` events through the audit service, `batch` per transaction; seconds."""
    from server.app import create_app
    from server.extension import EXTENSION

    container = create_app().extensions[EXTENSION]
    started = time.perf_counter()
    pending: list[Any] = []
    done = 0
    try:
        for event in events(features, estimator, count, subject_share):
            pending.append(event)
            if len(pending) == batch:
                done += _append(container, pending)
                pending = []
                if done % (batch * 50) == 0:
                    rate = done / (time.perf_counter() - started)
                    print(f"  filled {done:,} records ({rate:,.0f}/s)", flush=True)
        if pending:
            done += _append(container, pending)
    finally:
        container.close()
    return time.perf_counter() - started


def _append(container: Any, events_: list[Any]) -> int:
    with container.write() as session:
        container.audit.append_many(session, events_)
    return len(events_)


def time_verify(env: dict[str, str]) -> dict[str, Any]:
    """Run `cofre audit verify --json`, its progress bar on our stderr; wall and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [str(VENV_BIN / "cofre"), "audit", "verify", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    return {"exit": done.returncode, "wall_s": wall, "cpu_s": cpu, "report": report}


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[str | None]:
    """None for SQLite in the home; else a throw-away PostgreSQL database's URL."""
    if not args.postgres:
        yield None
        return
    sys.path.insert(0, str(BENCH))
    from run import postgres_database

    with postgres_database(args.postgres_url) as url:
        yield url


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500, help="events per transaction")
    parser.add_argument("--subject-share", type=float, default=0.2, help="rows about a person")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"
        ),
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the cofre home")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cofre-verify-"))
    home = workdir / "home"
    try:
        with database(args) as url:
            # This process builds a cofre too: the same settings as the CLI's.
            for name in [n for n in os.environ if n.startswith("COFRE_")]:
                del os.environ[name]
            os.environ["COFRE_HOME"] = str(home)
            if url:
                os.environ["COFRE_DATABASE_URL"] = url
            env = dict(os.environ)
            features, estimator = prepare_home(env, workdir)
            # The command's fixed cost (interpreter, imports, keys), on a near-empty log.
            empty = time_verify(env)
            print(f"filling {home} with {args.records:,} prediction records", flush=True)
            fill_s = fill(args.records, args.batch, args.subject_share, features, estimator)
            print(f"filled in {fill_s:.1f} s ({args.records / fill_s:,.0f} records/s)")
            timed = time_verify(env)
            size = sum(p.stat().st_size for p in home.rglob("cofre.db*"))
            report = timed["report"]
            checked = int(report.get("checked") or 0)
            net_wall = timed["wall_s"] - empty["wall_s"]
            net_cpu = timed["cpu_s"] - empty["cpu_s"]
            figures = {
                "records": args.records,
                "checked": checked,
                "database": "postgresql" if url else "sqlite",
                "sqlite_bytes": size if not url else None,
                "fill_s": fill_s,
                "verify_exit": timed["exit"],
                "verify_wall_s": timed["wall_s"],
                "verify_cpu_s": timed["cpu_s"],
                "verify_empty_wall_s": empty["wall_s"],
                "verify_empty_cpu_s": empty["cpu_s"],
                "records_per_s": checked / timed["wall_s"] if timed["wall_s"] else 0.0,
                # Net of the command's fixed cost; None where noise swallowed the walk.
                "records_per_s_net_wall": checked / net_wall if net_wall > 0 else None,
                "records_per_cpu_s_net": checked / net_cpu if net_cpu > 0 else None,
                "load_average": os.getloadavg()[0],
            }
            print(
                f"cofre audit verify: exit {timed['exit']}, {checked:,} records in "
                f"{timed['wall_s']:.1f} s wall ({timed['cpu_s']:.1f} s CPU): "
                f"{figures['records_per_s']:,.0f} records/s"
                + (f"; database {size / 2**20:.0f} MiB" if not url else "")
            )
            print(
                f"the command alone (near-empty log): {empty['wall_s']:.1f} s wall, "
                f"{empty['cpu_s']:.1f} s CPU; net of it: "
                f"{_rate(figures['records_per_s_net_wall'])} records/s wall, "
                f"{_rate(figures['records_per_cpu_s_net'])} records per CPU second"
            )
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(figures, indent=2))
            # Every record written plus the publish's own events, none fewer.
            ok = timed["exit"] == 0 and checked >= args.records
            return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
