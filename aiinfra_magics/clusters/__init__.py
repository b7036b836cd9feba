"""Dask clusters: one spec, one registry of backends, one manager.

``backends`` is imported first: it hands ``spec`` the registry that specs are checked
against, so ``spec`` stays a leaf that imports nothing else of this package.
"""

from . import backends as _backends  # noqa: F401 - registers the backends with spec
