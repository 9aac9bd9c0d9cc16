"""Benchmarks that print ratios side by side; run them all with ``python -m bench``."""
