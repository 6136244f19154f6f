"""The long-running processes: a stage's worker pool, the scheduler, and the all-in-one supervisor."""
