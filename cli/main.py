"""The ``vfsfuse`` entry point: the click group with every command module imported (each
registers its commands on the group as it is imported)."""

from __future__ import annotations

import sys

from cli import import_cmds, mount_cmds, session_cmds, store_cmds  # noqa: F401  (imported for their commands)
from cli.app import vfsfuse


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``vfsfuse = cli.main:main``)."""
    vfsfuse.main(args=argv, prog_name="vfsfuse")


if __name__ == "__main__":
    main(sys.argv[1:])
