"""Cron scheduling with guarantees periodiq alone does not give: one enqueue per tick whatever the number of
scheduler replicas, catch-up after downtime, an overlap policy, operator control and a run history.

- :mod:`pipeline.scheduling.cron`: when a cron expression fires, in the configured zone.
- :mod:`pipeline.scheduling.jobs`: the five scheduled jobs and the actors they send.
- :mod:`pipeline.scheduling.ticks`: the tick ledger (record under a unique key, then send).
- :mod:`pipeline.scheduling.runs`: the run history written by the tick actors.
- :mod:`pipeline.scheduling.control`: pause, resume, start, stop and trigger as database state.
- :mod:`pipeline.scheduling.overview`: per-scheduler figures derived from the history.
- :mod:`pipeline.scheduling.history`: pruning ticks and runs past their retention.
- :mod:`pipeline.scheduling.loop`: the scheduler process.
"""
