"""``python -m tools.admin COMMAND ...``: the operator's command (see :mod:`tools.admin.cli`)."""

import sys

from tools.admin.cli import run

sys.exit(run())
