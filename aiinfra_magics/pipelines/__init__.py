"""Notebooks promoted into parameterised, cached, parallel papermill pipelines on Dask.

spec (pipeline.yaml) -> dag (grid expansion) -> runner (Dask tasks running papermill via
execute/kernels on workers) -> record (run.json) -> report (HTML); promote edits pipeline.yaml.
"""
