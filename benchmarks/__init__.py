"""Benchmarks for faceswap: cost twins of the real models, the pipeline benchmark and the memory benchmark.

Run from the repository root as modules (`python -m benchmarks.run ...`); see `benchmarks/README.md`.
Benchmarks are not tests: they print figures, and `benchmarks/RESULTS.md` records them.
"""
