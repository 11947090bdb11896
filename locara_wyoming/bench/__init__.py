"""Benchmarks that drive a real server over TCP."""
