"""Observability (floor 2): one `CallEvent` per upstream call, and what listens to it.

`CallEvents` is the seam: the usage book emits through it, and the usage statistics
(`UsageStatistics`, core.md §7) and the Prometheus metrics (`Metrics`) observe it.
"""
