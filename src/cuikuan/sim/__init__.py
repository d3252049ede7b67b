"""Synthetic portfolios for the demo, tests and benchmarks."""
