"""`python -m ashbox.cli`: the `ashbox` command."""

from __future__ import annotations

import sys

from ashbox.cli.main import main

sys.exit(main())
