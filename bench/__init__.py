"""Benchmarks: ``make bench`` (``python -m bench``) prints the figures the README quotes."""
