"""The cluster core has one way in: a ``ClusterManager`` (issue 25 item 18).

``clusters/manager.py`` once repeated twelve of the manager's methods as module-level
functions over the default registry; callers now make a ``ClusterManager()`` (the default
registry) or pass their own ``Registry``.
"""

from __future__ import annotations

import inspect

from aiinfra_magics.clusters import manager
from aiinfra_magics.clusters.manager import ClusterManager


def test_the_manager_module_repeats_none_of_its_methods():
    methods = {name for name, _ in inspect.getmembers(ClusterManager, inspect.isfunction)}
    functions = {
        name
        for name, value in vars(manager).items()
        if inspect.isfunction(value) and value.__module__ == manager.__name__
    }
    assert not methods & functions, sorted(methods & functions)
    assert "stop_all_owned" not in functions  # host.close_all closes this process's clusters
