"""``python -m aiinfra_magics`` is the ``aiinfra`` command."""

from .doors.cli import console

console()
