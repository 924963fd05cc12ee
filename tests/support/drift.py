"""Synthetic data for retraining tests: a concept that drifts, and ways to poison it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = [f"x{i}" for i in range(5)]


def frame(rows: int, seed: int, concept: str = "new") -> pd.DataFrame:
    """Five standard-normal features; the label follows the old or the new concept, or
    an interaction (the sign of x0 * x1: clean, but beyond a linear recipe)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, 5))
    if concept == "old":
        score = values[:, 0] + 0.5 * values[:, 1]
    elif concept == "interaction":
        score = values[:, 0] * values[:, 1]
    else:
        score = values[:, 0] - values[:, 2] + values[:, 3]
    data = pd.DataFrame(values, columns=FEATURES)
    data["label"] = (score + 0.2 * rng.standard_normal(rows) > 0).astype(int)
    return data


def champion(concept: str = "old", rows: int = 400) -> bytes:
    data = frame(rows, seed=99, concept=concept)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return sio.dumps(model.fit(data[FEATURES], data["label"]))


def flip_labels(data: pd.DataFrame, share: float, seed: int = 7) -> pd.DataFrame:
    poisoned = data.copy()
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(data), int(share * len(data)), replace=False)
    poisoned.loc[rows, "label"] = 1 - poisoned.loc[rows, "label"]
    return poisoned


def shift_feature(data: pd.DataFrame, name: str, by: float) -> pd.DataFrame:
    shifted = data.copy()
    shifted[name] = shifted[name] + by
    return shifted
