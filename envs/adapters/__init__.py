"""Thin adapters from :class:`envs.core.VecGame` to other RL libraries' env APIs (vector envs, and
one gymnasium ``Env``); ``_common`` holds what their seeds mean."""
