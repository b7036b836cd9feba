from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def ip():
    """An IPython InteractiveShell with the extension loaded; owned clusters closed after."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    yield shell
    from aiinfra_magics.clusters import host

    host.close_all()
    shell.user_ns.pop("client", None)
