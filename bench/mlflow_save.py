"""Run by MLflow's own venv (bench/peers.py): save a fitted estimator as an MLflow model.

    python mlflow_save.py MODEL.joblib OUT_DIR [--proba]

As a user would: `mlflow.sklearn.save_model` (its default format, skops) with a
signature inferred from the training frame, so `mlflow models serve` checks
every request against it. With --proba the pyfunc answers `predict_proba`
(MLflow's sklearn flavour serves one method: labels and probabilities cannot
come in one answer).
"""

from __future__ import annotations

import sys

import joblib
import mlflow.sklearn
import skops.io as sio
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    proba = "--proba" in sys.argv[3:]
    estimator = joblib.load(source)
    features, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    method = "predict_proba" if proba else "predict"
    signature = infer_signature(features, getattr(estimator, method)(features))
    # MLflow 3 saves sklearn models with skops by default and asks which types
    # beyond skops' own to trust (a forest's Tree): our own estimator, so all of them.
    trusted = sio.get_untrusted_types(data=sio.dumps(estimator))
    mlflow.sklearn.save_model(
        estimator,
        out,
        signature=signature,
        pyfunc_predict_fn=method,
        skops_trusted_types=trusted,
    )


if __name__ == "__main__":
    main()
