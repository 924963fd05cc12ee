"""Data for monitoring tests: three standard-normal features, a classifier on them,
and traffic with one feature shifted."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression

FEATURES = ["x0", "x1", "x2"]


def normal_frame(rows: int, seed: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.standard_normal((rows, len(FEATURES))), columns=FEATURES)
    for name, by in (shift or {}).items():
        frame[name] = frame[name] + by
    return frame


def labels_of(frame: pd.DataFrame) -> np.ndarray:
    return (frame["x0"] + 0.5 * frame["x2"] > 0).astype(int).to_numpy()


@cache
def classifier() -> bytes:
    train = normal_frame(1000, seed=1)
    return sio.dumps(LogisticRegression().fit(train, labels_of(train)))


def reference_csv(rows: int = 4000) -> bytes:
    frame = normal_frame(rows, seed=2)
    return frame.assign(target=labels_of(frame)).to_csv(index=False).encode()
