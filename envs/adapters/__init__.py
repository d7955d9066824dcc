"""Thin adapters from :class:`envs.core.VecGame` to other RL libraries' vector-env APIs."""
