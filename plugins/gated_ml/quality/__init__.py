"""Data-quality gates: Great Expectations suites built from the spec, run as checkpoints."""
