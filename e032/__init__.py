"""Shared helpers of the E032 recipe scripts (paths of a track, atomic I/O, thread pinning).

The science lives in :mod:`msbg` (hearing-loss simulation) and in the modules of this package;
the four top-level scripts only wire stages together.
"""
