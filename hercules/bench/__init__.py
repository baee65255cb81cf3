"""Benchmarks, each runnable as ``python -m hercules.bench.<name>`` and as ``hercules bench <name>``."""
