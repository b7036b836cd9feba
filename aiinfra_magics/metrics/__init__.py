"""Metrics of the machines a cluster runs on, and what they say about what it held.

- ``sample``: the one sampler of a host (psutil) and its GPUs (NVML), used by the
  server's charts and by every worker (import-light: psutil, pynvml late).
- ``store``: the scheduler's bounded ring per host, and the efficiency figures
  it integrates from the samples (pure: no dask).
- ``plugins``: the Dask worker and scheduler plugins that carry samples there.
- ``efficiency``: held against used, waste warnings and right-sizing (pure).
- ``query``: the series and latest samples of a registered cluster, from any process.
"""
