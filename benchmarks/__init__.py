"""Speed benchmarks of the scoring hot paths, each against a straightforward baseline.

Scripts, not tests: they print times and ratios and exit non-zero only when the fast path and
its baseline disagree (timings are never asserted: the machines are shared and noisy).
``python -m benchmarks [--quick]`` runs them all; ``python -m benchmarks.originality`` one.
"""
