"""Reference profiles: bins, shares, ranges, categories and samples from known data;
published with a version from a CSV or Parquet file through the CLI and the API."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sklearn.datasets import load_iris

from governance.errors import InvalidInput
from governance.monitoring import profiles
from server.cli import cli
from server.container import Container
from tests.support.models import iris_classifier

CARD = ["--purpose", "score flowers", "--legal-basis", "legitimate interest"]


def iris_frame() -> pd.DataFrame:
    features, target = load_iris(return_X_y=True, as_frame=True)
    return features.assign(target=target)


def test_numeric_bins_are_deciles_with_their_shares() -> None:
    values = np.arange(1000, dtype=float)
    column = profiles.numeric_column(np.append(values, [np.nan] * 250))
    assert column["missing_share"] == pytest.approx(0.2)
    assert column["edges"] == pytest.approx(np.quantile(values, np.linspace(0.1, 0.9, 9)))
    assert column["shares"] == pytest.approx([0.1] * 10)
    assert (column["min"], column["max"]) == (0.0, 999.0)
    # 200 quantiles, each standing for five rows: not the rows themselves.
    assert column["sample"] == pytest.approx(np.quantile(values, np.linspace(0, 1, 200)))


def test_the_sample_is_bounded_and_every_value_falls_in_one_bin() -> None:
    values = np.random.default_rng(1).normal(size=20_000)
    column = profiles.numeric_column(values)
    assert len(column["sample"]) == profiles.SAMPLE_SIZE
    bins = profiles.bin_index(column["edges"], np.array([-1e9, 0.0, 1e9]))
    assert bins[0] == 0 and bins[-1] == len(column["edges"])


def test_ties_merge_bins() -> None:
    column = profiles.numeric_column([0.0] * 90 + [1.0] * 10)
    assert len(column["edges"]) == 2  # nine deciles at 0.0 are one edge
    assert column["shares"] == pytest.approx([0.0, 0.9, 0.1])


def test_categories_are_counted_as_text_and_rare_ones_are_not_named() -> None:
    column = profiles.categorical_column(["a"] * 5 + [True] * 5 + ["rare-name", None] * 2)
    assert column["counts"] == {"a": 5, "True": 5}
    assert column["other"] == 2  # fewer than five rows: counted, never named
    assert column["missing_share"] == pytest.approx(2 / 14)


def test_an_unreadable_or_incomplete_file_is_refused() -> None:
    with pytest.raises(InvalidInput):
        profiles.reference_format("data.xlsx")
    frame = iris_frame().drop(columns=["petal width (cm)"])
    with pytest.raises(InvalidInput, match="lacks"):
        profiles.estimator_input(frame, [{"name": "petal width (cm)", "dtype": "float64"}], True)


def _versions_profile(cofre: Container, name: str, version: int) -> dict:
    with cofre.read() as session:
        found = cofre.registry.profiles.get(session, name, version)
        assert found is not None
        return found.profile


def test_publish_with_reference_data_from_the_cli(
    runner: CliRunner, cofre: Container, tmp_path: Path
) -> None:
    model = tmp_path / "m.skops"
    model.write_bytes(iris_classifier())
    data = tmp_path / "reference.parquet"
    iris_frame().to_parquet(data)
    args = ["models", "publish", str(model), "--name", "iris", *CARD]
    result = runner.invoke(cli, [*args, "--reference-data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    profile = _versions_profile(cofre, "iris", json.loads(result.output)["version"])
    assert profile["source"] == "reference" and profile["rows"] == 150
    assert set(profile["features"]) == set(load_iris(as_frame=True).feature_names)
    assert profile["output"]["type"] == "categorical"
    assert sum(profile["output"]["counts"].values()) == 150
    assert profile["target"]["counts"] == {"0": 50, "1": 50, "2": 50}
    bad = tmp_path / "bad.csv"
    iris_frame().drop(columns=["sepal length (cm)"]).to_csv(bad, index=False)
    refused = runner.invoke(cli, [*args, "--allow-duplicate", "--reference-data", str(bad)])
    assert refused.exit_code != 0 and "lacks" in refused.output


def test_publish_with_reference_data_over_http(
    client: FlaskClient, cofre: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    csv = iris_frame().to_csv(index=False).encode()
    response = client.post(
        "/api/v1/models/iris/versions",
        data={
            "purpose": "p",
            "legal_basis": "l",
            "file": (io.BytesIO(iris_classifier()), "m.skops"),
            "reference_data": (io.BytesIO(csv), "reference.csv"),
        },
        headers=api_key("publisher"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    profile = _versions_profile(cofre, "iris", 1)
    petal = profile["features"]["petal length (cm)"]
    assert petal["min"] == 1.0 and petal["max"] == 6.9
    assert petal["missing_share"] == 0.0
