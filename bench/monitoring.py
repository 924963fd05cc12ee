"""How long the monitoring job takes over N audited prediction rows.

    .venv/bin/python bench/monitoring.py                 # 1,000,000 rows (minutes)
    .venv/bin/python bench/monitoring.py --rows 20000    # a quick check

Builds a throw-away appliance (SQLite by default, or --database-url), publishes a
10-feature classifier with reference data, writes N rows through the audit log's
own append path (sealed as the prediction core seals them: a request's rows about
nobody as one block, rows with a subject id one by one under the subject's key),
then times `Monitoring.run` over the window holding them and prints the figures:
seconds, rows per second, peak memory (max RSS) and what was found. Writing the
rows is not timed (it is the serving path's cost, measured by bench/run.py).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from governance.accounts.actor import SYSTEM  # noqa: E402
from governance.audit.service import AuditEvent, PersonalRow  # noqa: E402
from governance.monitoring.profiles import ReferenceData  # noqa: E402
from governance.registry.service import ModelCard, PublishRequest  # noqa: E402
from server import create_app  # noqa: E402
from server.container import Container  # noqa: E402
from server.extension import EXTENSION  # noqa: E402
from server.setup import initialise  # noqa: E402

FEATURES = [f"x{i}" for i in range(10)]
CARD = ModelCard(purpose="benchmark", legal_basis="legitimate interest (benchmark)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rows-per-request", type=int, default=10)
    parser.add_argument(
        "--subject-share", type=float, default=0.1, help="requests with subject ids"
    )
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = {"home": home, "log_json": False, "log_level": "WARNING"}
        if args.database_url:
            settings["database_url"] = args.database_url
        app = create_app(settings)
        cofre: Container = app.extensions[EXTENSION]
        initialise(cofre, SYSTEM, "admin", "benchmark password, not used")
        estimator = _publish(cofre)
        started = time.perf_counter()
        _write(cofre, estimator, args.rows, args.rows_per_request, args.subject_share)
        written = time.perf_counter() - started
        started = time.perf_counter()
        with cofre.read() as session:
            report = cofre.monitoring.run(session, "bench", 1, timedelta(hours=24))[0]
        seconds = time.perf_counter() - started
        cofre.close()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "rows_per_request": args.rows_per_request,
                "subject_share": args.subject_share,
                "database": "postgresql" if args.database_url else "sqlite",
                "write_seconds": round(written, 1),
                "monitoring_seconds": round(seconds, 1),
                "rows_per_second": round(args.rows / seconds),
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "rows_seen": report["rows"]["seen"],
                "drifting": report["drifting"],
                "psi_x3": report["drift"]["x3"]["psi"],
            },
            indent=2,
        )
    )


def _publish(cofre: Container) -> LogisticRegression:
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.standard_normal((5000, len(FEATURES))), columns=FEATURES)
    labels = (train["x0"] + train["x1"] > 0).astype(int)
    estimator = LogisticRegression().fit(train, labels)
    reference = train.assign(target=labels).to_csv(index=False).encode()
    request = PublishRequest(
        name="bench",
        artifact=sio.dumps(estimator),
        card=CARD,
        aliases=["production"],
        reference=ReferenceData(reference, "csv"),
    )
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)
    return estimator


def _write(
    cofre: Container, estimator: LogisticRegression, rows: int, per_request: int, share: float
) -> None:
    """N rows of traffic, x3 shifted by one standard deviation, 500 requests a commit."""
    rng = np.random.default_rng(1)
    done, batch = 0, 500 * per_request
    while done < rows:
        count = min(batch, rows - done)
        values = rng.standard_normal((count, len(FEATURES)))
        values[:, 3] += 1.0
        proba = estimator.predict_proba(values)
        outputs = proba.argmax(axis=1)
        events = []
        for start in range(0, count, per_request):
            stop = min(start + per_request, count)
            personal = rng.random() < share
            events.append(
                _event(
                    values[start:stop],
                    outputs[start:stop],
                    proba[start:stop],
                    personal,
                    done + start,
                )
            )
        with cofre.write() as session:
            cofre.audit.append_many(session, events)
        done += count


def _event(
    values: np.ndarray, outputs: np.ndarray, proba: np.ndarray, personal: bool, first: int
) -> AuditEvent:
    rows = [
        PersonalRow(
            f"subject-{(first + i) % 5000}" if personal else None,
            {
                "input": dict(zip(FEATURES, map(float, row), strict=True)),
                "output": int(out),
                "proba": [float(p) for p in probabilities],
            },
        )
        for i, (row, out, probabilities) in enumerate(zip(values, outputs, proba, strict=True))
    ]
    return AuditEvent(
        kind="prediction",
        actor=SYSTEM,
        status=200,
        endpoint="native",
        model_name="bench",
        model_version=1,
        rows=rows,
        details={"rows": len(rows), "latency_ms": 1},
    )


if __name__ == "__main__":
    main()
