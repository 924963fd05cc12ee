"""Where one audited prediction's CPU goes: cProfile over N native-door requests.

    .venv/bin/python bench/hot_path.py [--rows 1] [--requests 2000] [--model lr|rf]

Runs in one process through Flask's test client on a throw-away SQLite home (no
socket, no Gunicorn), so it shows cofre's own cost per request: WSGI dispatch,
authentication, decoding, the estimator, sealing and the audit append (the writer
thread's share included, as process CPU). Prints CPU ms per request and the
functions with the most cumulative time. Not a load test: for throughput and
peers, bench/run.py.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    args = _arguments()
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from governance.accounts.actor import SYSTEM
    from governance.audit.writer import AuditWriter
    from governance.registry.service import ModelCard, PublishRequest
    from server import create_app
    from server.extension import EXTENSION
    from server.setup import initialise

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    if args.model == "rf":
        estimator = RandomForestClassifier(100, random_state=0)
    else:
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    estimator.fit(features, target)
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
            cofre.registry.publish(
                session,
                SYSTEM,
                PublishRequest(
                    name="m", artifact=sio.dumps(estimator), card=card, aliases=["production"]
                ),
            )
            secret = cofre.accounts.create_key(session, SYSTEM, "bench", "predictor").secret
        body = json.dumps({"instances": features.iloc[: args.rows].to_dict("records")})
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        client = app.test_client()

        def call() -> None:
            response = client.post("/api/v1/models/m/predict", data=body, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)

        for _ in range(50):
            call()
        # cProfile sees one thread: the audit writer's commits get their own profiler.
        writer_profiler = cProfile.Profile()
        commit = AuditWriter._try_commit

        def profiled_commit(self, batch):  # type: ignore[no-untyped-def]
            writer_profiler.enable()
            try:
                return commit(self, batch)
            finally:
                writer_profiler.disable()

        AuditWriter._try_commit = profiled_commit  # type: ignore[method-assign]
        profiler = cProfile.Profile()
        before = resource.getrusage(resource.RUSAGE_SELF)
        profiler.enable()
        for _ in range(args.requests):
            call()
        profiler.disable()
        after = resource.getrusage(resource.RUSAGE_SELF)
        cofre.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"{args.model}-{args.rows}: {cpu / args.requests * 1000:.2f} ms CPU per request "
        f"(profiled, {args.requests} requests)"
    )
    for title, which in (("request thread", profiler), ("audit writer thread", writer_profiler)):
        out = io.StringIO()
        pstats.Stats(which, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(f"== {title}\n{out.getvalue()}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["lr", "rf"], default="lr")
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--sort", choices=["cumulative", "tottime"], default="cumulative")
    return parser.parse_args()


if __name__ == "__main__":
    main()
