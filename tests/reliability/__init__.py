"""Fault scenarios (shared spec reliability.md §4) and issue-15 regressions, over sockets."""
