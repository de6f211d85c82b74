"""Benchmarks: latency per stage and retrieval quality, run with ``ludao bench``."""
