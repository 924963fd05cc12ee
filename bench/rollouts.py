"""What a rollout costs per request: no rollout vs canary vs shadow, through the core.

    .venv/bin/python bench/rollouts.py [--requests 2000] [--rows 1] [--percent 20]

Runs in one process on a throw-away SQLite home (no socket, no Gunicorn): the
same native-door requests through Flask's test client, first with no rollout,
then under a canary (P % answered by the candidate, the champion re-scoring those
rows off the request path for agreement), then under a shadow (the champion
answers, the candidate scores every request off the path and its outputs are
audited). For each: wall ms per request as the client sees it (p50, p99) and
process CPU ms per request, the rollout thread's work included (it is waited for
before CPU is read), and the shadow work dropped. Two logistic regressions on
breast cancer (30 features), the champion and a differently regularised candidate.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    args = _arguments()
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from governance.accounts.actor import SYSTEM
    from governance.registry.service import ModelCard, PublishRequest
    from governance.rollouts.service import RolloutRequest
    from server import create_app
    from server.extension import EXTENSION
    from server.setup import initialise

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    artifacts = [
        sio.dumps(
            make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(
                features, target
            )
        )
        for c in (1.0, 0.05)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        app = create_app(
            {
                "home": str(home),
                "database_url": f"sqlite:///{home}/cofre.db",
                "key_dir": str(Path(tmp) / "keys"),
                "log_json": False,
            }
        )
        cofre = app.extensions[EXTENSION]
        initialise(cofre, SYSTEM, "admin", "a-long-admin-password")
        card = ModelCard(
            purpose="bench",
            legal_basis="bench",
            description="bench",
            decision_mode="automated",
            owner="bench",
        )
        with cofre.write() as session:
            for artifact, aliases in zip(artifacts, (["production"], []), strict=True):
                cofre.registry.publish(
                    session, SYSTEM, PublishRequest("bc", artifact, card, aliases=aliases)
                )
            key = cofre.accounts.create_key(session, SYSTEM, "bench", "predictor").secret
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        rows = features.iloc[: args.rows].to_dict(orient="records")
        results: dict[str, Any] = {}
        _run(client, headers, rows, max(50, args.requests // 10), cofre)  # warm-up
        results["none"] = _run(client, headers, rows, args.requests, cofre)
        for strategy, percent in (("canary", args.percent), ("shadow", None)):
            with cofre.write() as session:
                cofre.rollouts.start(
                    session, SYSTEM, RolloutRequest("bc", 2, strategy, percent=percent)
                )
            results[strategy] = _run(client, headers, rows, args.requests, cofre)
            with cofre.read() as session:
                status = cofre.rollout_reports.status(session, "bc")
            results[strategy]["candidate_share"] = round(
                status["variants"]["candidate"]["requests"] / args.requests, 3
            )
            results[strategy]["shadow_dropped"] = status["variants"]["candidate"]["shadow_dropped"]
            with cofre.write() as session:
                cofre.rollouts.abort(session, SYSTEM, "bc", "bench")
        cofre.close()
    base = results["none"]
    for name in ("canary", "shadow"):
        results[name]["extra_cpu_ms"] = round(results[name]["cpu_ms"] - base["cpu_ms"], 3)
        results[name]["extra_p50_ms"] = round(results[name]["p50_ms"] - base["p50_ms"], 3)
    print(
        json.dumps(
            {
                "requests": args.requests,
                "rows": args.rows,
                "percent": args.percent,
                "results": results,
            },
            indent=2,
        )
    )


def _run(
    client: Any, headers: dict[str, str], rows: list[dict[str, Any]], n: int, cofre: Any
) -> dict[str, Any]:
    latencies = []
    cpu = _cpu_seconds()
    for _ in range(n):
        started = time.perf_counter()
        answer = client.post("/api/v1/models/bc/predict", json={"instances": rows}, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.json
    cofre.rollout_traffic.drain(timeout=120)  # the shadow work's CPU counts too
    cpu = _cpu_seconds() - cpu
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 3),
        "cpu_ms": round(cpu * 1000 / n, 3),
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--percent", type=float, default=20.0)
    return parser.parse_args()


if __name__ == "__main__":
    main()
