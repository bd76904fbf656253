"""Kernel benchmarks: pyfastnn against NumPy and PyTorch in the same run.

``python -m pyfastnn.bench`` prints the table; see ``--help``.
"""
from .runner import Case, measure_peak_gflops, run_cases, time_interleaved, time_median  # noqa: F401
