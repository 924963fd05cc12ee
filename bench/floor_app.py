"""The floor: the least a Flask app can do to serve the same estimators over HTTP.

No auth, no validation, no audit, no registry: it loads every skops file in
$BENCH_MODEL_DIR at import (preloaded by Gunicorn), builds the DataFrame the
estimator was fitted on (so scikit-learn sees the feature names, as a user's
app would give them) and returns `predict`. With BENCH_PROBA=1 it also returns
the class probabilities, from one `predict_proba` pass with the labels taken as
its argmax (what cofre does for these estimators), so both do the same model
work. Same URL and body as cofre's native door.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import skops.io as sio
from flask import Flask, jsonify, request


def _load(directory: Path) -> dict[str, Any]:
    models = {}
    for path in sorted(directory.glob("*.skops")):
        # Our own files, written by bench/run.py a moment ago: trust what they name.
        models[path.stem] = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    return models


MODELS = _load(Path(os.environ["BENCH_MODEL_DIR"]))
PROBA = os.environ.get("BENCH_PROBA") == "1"
app = Flask(__name__)


@app.post("/api/v1/models/<name>/predict")
def predict(name: str) -> Any:
    model = MODELS[name]
    frame = pd.DataFrame.from_records(
        request.get_json()["instances"], columns=model.feature_names_in_
    )
    if not PROBA:
        return jsonify({"predictions": model.predict(frame).tolist()})
    proba = model.predict_proba(frame)
    labels = model.classes_.take(proba.argmax(axis=1))
    return jsonify({"predictions": labels.tolist(), "probabilities": proba.tolist()})
