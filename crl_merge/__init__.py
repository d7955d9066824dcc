"""crl-merge: a benchmark harness for continual reinforcement learning by model merging."""

__version__ = "0.1.0"
