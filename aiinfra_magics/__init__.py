"""aiinfra: Dask clusters, JAX sessions, CUDA kernels and pipelines from Jupyter.

``%load_ext aiinfra_magics`` registers the ``%aiinfra`` magic.
"""

from __future__ import annotations

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:  # noqa: ANN001 - IPython's own type
    from .doors.magic import AiinfraMagics

    ipython.register_magics(AiinfraMagics)


def unload_ipython_extension(ipython) -> None:  # noqa: ANN001
    pass


def _jupyter_server_extension_points() -> list[dict]:
    """Entry point jupyter-server uses to load the REST API and dashboard proxy."""
    from .server import AiinfraServerApp

    return [{"module": "aiinfra_magics", "app": AiinfraServerApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lives (also installed as shared data)."""
    return [{"src": "labextension", "dest": "aiinfra"}]
