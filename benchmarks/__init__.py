"""Benchmarks of the platform: end to end, against the real services. See benchmarks/README.md."""
