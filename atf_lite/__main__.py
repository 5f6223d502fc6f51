"""``python -m atf_lite <command>``: see :mod:`atf_lite.experiments.cli`."""

from __future__ import annotations

import sys

from atf_lite.experiments.cli import main

if __name__ == "__main__":
    sys.exit(main())
