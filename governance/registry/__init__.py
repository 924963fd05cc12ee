"""The model registry: models, immutable versions with model cards, aliases, artifacts."""
