"""Realistic synthetic stakeholders for demonstrations and benchmarks."""
