"""`ashbox db upgrade`: bring a deployment's database schema to this version's, once.

`ashbox serve` migrates its own database; a deployment of `ashbox api` and
`ashbox worker` processes shares one, which none of them migrates: this does,
before the new version's processes start (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import sys

from ashbox.cli.exit_codes import ExitCode
from ashbox.cli.serve_command import log_to_stderr, settings_for


def upgrade(args: argparse.Namespace) -> ExitCode:
    from ashbox.db.engine import HEAD_REVISION, Database

    settings = settings_for(args)
    log_to_stderr()
    db = Database.of(settings)
    try:
        before = db.revision()
        db.migrate()
    finally:
        db.dispose()
    if before == HEAD_REVISION:
        sys.stdout.write(f"database schema already at revision {HEAD_REVISION}\n")
    else:
        sys.stdout.write(
            f"database schema upgraded from {before or '(empty)'} to {HEAD_REVISION}\n"
        )
    return ExitCode.OK
