"""``python -m aiinfra_magics`` is the ``aiinfra`` command."""

import sys

from .doors.cli import main

sys.exit(main())
