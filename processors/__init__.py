"""Processors: the Faust app that maps facts into commands (mapping, keys, echoes, conflicts)."""
