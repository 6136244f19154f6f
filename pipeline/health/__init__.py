"""The health aggregator and admin API (``livedash health``).

- :mod:`pipeline.health.targets`: ``HEALTH_METRICS_TARGETS`` parsed and checked against the scheduler ids.
- :mod:`pipeline.health.sources`: reading the sources: worker pools' metrics endpoints (or Prometheus),
  RabbitMQ's management API, and the run history in the database.
- :mod:`pipeline.health.rules`: the status of one scheduler from what the sources said (``docs/health.md``).
- :mod:`pipeline.health.aggregator`: reads every source at once, each with a timeout, and judges.
- :mod:`pipeline.health.api`: the FastAPI application (``create_app``), assembled from the routers of
  :mod:`pipeline.health.probes` and :mod:`pipeline.health.admin`, with the bodies of
  :mod:`pipeline.health.bodies` and the shared :mod:`pipeline.health.context`.
"""
