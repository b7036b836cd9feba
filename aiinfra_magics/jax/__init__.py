"""JAX sessions (settings applied before the backend starts) and multi-process SPMD cells."""
