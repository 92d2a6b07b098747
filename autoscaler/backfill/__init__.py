"""History from an existing Prometheus, so that forecasts are ready on a workload's first day.

With ``history.prometheus_url`` set, ``foresight run`` back-fills the store with the load
history its forecaster reads (the last ``forecast.history_days`` on the controller's grid)
for every workload an autoscaler follows, wherever the store has none:

* :mod:`~autoscaler.backfill.mapping`: the store's series and the PromQL over cAdvisor's
  metrics that gives the same numbers;
* :mod:`~autoscaler.backfill.plan`: the spans the store lacks, cut into range-query chunks
  (pure);
* :mod:`~autoscaler.backfill.copier`: one chunk from Prometheus into the store;
* :mod:`~autoscaler.backfill.gate`: the controller's Kubernetes actions, which find the
  autoscalers, hold a new one back while its history is read, put the ``HistoryBackfilled``
  condition on its status, and run the back-fill;
* :mod:`~autoscaler.backfill.client` and :mod:`~autoscaler.backfill.settings`: the HTTP
  client with its credentials, and the ``history`` settings.

Invariants: a back-fill writes only timestamps the store has no sample at, so it never
overwrites and a restart adds nothing twice; it runs on the event loop only as awaited HTTP
and short appends (the store's read of what it has runs in a thread); it holds one chunk at
a time.
"""
