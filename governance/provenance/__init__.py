"""Where a model came from and who vouches for it: artifact signatures, trusted signers,
bundles between appliances.

Like the rest of governance/, this package imports no Flask, Werkzeug, click,
APScheduler or Gunicorn: the CLI, the workers and the scheduler all reuse it.
"""
