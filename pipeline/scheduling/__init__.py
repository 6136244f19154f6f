"""Cron scheduling with guarantees periodiq alone does not give: one run per tick whatever the number and kind
of senders, catch-up after downtime, an overlap policy, operator control and a run history.

- :mod:`pipeline.scheduling.cron`: when a cron expression fires, in the configured zone.
- :mod:`pipeline.scheduling.jobs`: the job registry: each job's queue, cron setting, actors, entry points.
- :mod:`pipeline.scheduling.ticks`: the tick ledger (record under a unique key, then send; or claim the
  tick of a message that arrived without an entry).
- :mod:`pipeline.scheduling.periodiq_specs`: the ``periodic`` option, firing as cronsim does.
- :mod:`pipeline.scheduling.runs`: the run history written by the tick actors.
- :mod:`pipeline.scheduling.control`: pause, resume, start, stop and trigger as database state.
- :mod:`pipeline.scheduling.overview`: per-scheduler figures derived from the history.
- :mod:`pipeline.scheduling.records`: a scheduler's record in the admin API's shape (the API and the CLI).
- :mod:`pipeline.scheduling.history`: pruning ticks and runs past their retention.
- :mod:`pipeline.scheduling.loop`: the scheduler process.
"""
