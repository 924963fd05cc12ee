"""The wire formats of the prediction doors, beside the core they feed.

Each door reads bytes, decodes them here into the core's `Decoded` form, calls
the core once and encodes its `PredictionResult` back: native (`native`), the
MLflow scoring protocol (`mlflow`), the Open Inference Protocol (`v2`) and
tabular files for batch scoring (`frames`). `strict_json` is the one JSON
reader every door and every JSON route uses. No Flask here.
"""
