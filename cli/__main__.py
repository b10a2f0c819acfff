"""``python -m cli``: the same as the ``vfsfuse`` command."""

import sys

from cli.main import main

main(sys.argv[1:])
