"""Evaluation: test-set objective terms and the importance-weighted likelihood."""
