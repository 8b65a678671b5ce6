"""Benchmarks that print figures side by side with a reference tool; never timed tests."""
