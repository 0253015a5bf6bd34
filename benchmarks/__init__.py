"""Benchmarks (``make bench``): each compares two ways of doing the same work in one run and
prints ratios, never a lone absolute time. Not part of the test suite."""
