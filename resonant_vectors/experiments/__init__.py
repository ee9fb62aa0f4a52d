"""Experiments and benchmarks of the memory (the learning variants, the instinct experiment, records)."""
