"""Experiment scripts built on reclib (grids, benchmarks against peers); not part of the library."""
