"""The processors: the Faust worker that turns facts into commands."""

from pathlib import Path

from platformdirs import user_data_dir

# The worker's local table state, the same whether `up` or the user runs it.
DEFAULT_WORKER_DIR = Path(user_data_dir("clientify-odoo")) / "stack" / "worker"
