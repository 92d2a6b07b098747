"""Every metric name foresight exports on ``/metrics`` or writes to its store.

The store and ``/metrics`` use the same names, so a rule or dashboard query means the same
thing evaluated by foresight or by a Prometheus that scrapes it. No other module spells a
``foresight_`` name (``tests/foundation/test_metric_names.py`` holds it so); the dashboards
build their PromQL from these constants.

A counter's name ends in ``_total``: it is the name of its samples on ``/metrics`` and in the
store alike.
"""

from __future__ import annotations

# -- usage, from the kubelets' /metrics/resource -------------------------------------------
NODE_CPU_SECONDS = "foresight_node_cpu_usage_seconds_total"
NODE_CPU_CORES = "foresight_node_cpu_usage_cores"
NODE_MEMORY = "foresight_node_memory_working_set_bytes"
POD_CPU_CORES = "foresight_pod_cpu_usage_cores"
POD_MEMORY = "foresight_pod_memory_working_set_bytes"
CONTAINER_CPU_SECONDS = "foresight_container_cpu_usage_seconds_total"
CONTAINER_CPU_CORES = "foresight_container_cpu_usage_cores"
CONTAINER_MEMORY = "foresight_container_memory_working_set_bytes"
WORKLOAD_CPU_CORES = "foresight_workload_cpu_usage_cores"
WORKLOAD_MEMORY = "foresight_workload_memory_working_set_bytes"
WORKLOAD_PODS_REPORTING = "foresight_workload_pods_reporting"

# -- storage, from the kubelets' /stats/summary (no established name for these) -------------
POD_EPHEMERAL_STORAGE_USED = "foresight_pod_ephemeral_storage_used_bytes"
POD_VOLUME_USED = "foresight_pod_volume_used_bytes"
POD_VOLUME_CAPACITY = "foresight_pod_volume_capacity_bytes"
NODE_FS_CAPACITY = "foresight_node_filesystem_capacity_bytes"
NODE_FS_AVAILABLE = "foresight_node_filesystem_available_bytes"
NODE_FS_USED = "foresight_node_filesystem_used_bytes"
NODE_FS_INODES = "foresight_node_filesystem_inodes"
NODE_FS_INODES_FREE = "foresight_node_filesystem_inodes_free"

# -- cluster state, from the Kubernetes API -------------------------------------------------
NODE_CAPACITY = "foresight_node_capacity"
NODE_ALLOCATABLE = "foresight_node_allocatable"
NODE_CONDITION = "foresight_node_condition"
NODE_INFO = "foresight_node_info"
NODE_UNSCHEDULABLE = "foresight_node_unschedulable"
POD_PHASE = "foresight_pod_phase"
POD_READY = "foresight_pod_ready"
POD_OWNER = "foresight_pod_owner"
CONTAINER_REQUESTS = "foresight_container_resource_requests"
CONTAINER_LIMITS = "foresight_container_resource_limits"
CONTAINER_RESTARTS = "foresight_container_restarts_total"
CONTAINER_LAST_TERMINATED = "foresight_container_last_terminated_reason"
WORKLOAD_REPLICAS_DESIRED = "foresight_workload_replicas_desired"
WORKLOAD_REPLICAS_READY = "foresight_workload_replicas_ready"
WORKLOAD_REPLICAS_AVAILABLE = "foresight_workload_replicas_available"
WORKLOAD_REPLICAS_UPDATED = "foresight_workload_replicas_updated"
JOB_PODS = "foresight_job_pods"
JOB_COMPLETE = "foresight_job_complete"
CRONJOB_LAST_SCHEDULE = "foresight_cronjob_last_schedule_timestamp_seconds"
CRONJOB_SUSPENDED = "foresight_cronjob_suspended"
HPA_INFO = "foresight_hpa_info"

# -- the replica's own health: scrapes, list/watch, the store --------------------------------
SCRAPE_DURATION = "foresight_scrape_duration_seconds"
SCRAPE_TARGET_UP = "foresight_scrape_target_up"
SCRAPE_LAST_SUCCESS = "foresight_scrape_last_success_timestamp_seconds"
SCRAPE_ERRORS = "foresight_scrape_errors_total"
SCRAPE_ATTEMPTS = "foresight_scrape_attempts_total"
SCRAPE_SAMPLES_REJECTED = "foresight_scrape_samples_rejected_total"
SCRAPE_CYCLE_DURATION = "foresight_scrape_cycle_duration_seconds"
WATCH_LISTS = "foresight_watch_lists_total"
WATCH_RELISTS_GONE = "foresight_watch_relists_gone_total"
WATCH_EVENTS = "foresight_watch_events_total"
WATCH_ERRORS = "foresight_watch_errors_total"
STORE_SERIES = "foresight_store_series"
STORE_SAMPLES = "foresight_store_samples"
STORE_MEMORY = "foresight_store_memory_bytes"
STORE_DISK = "foresight_store_disk_bytes"
STORE_SAMPLES_APPENDED = "foresight_store_samples_appended_total"
STORE_SAMPLES_REJECTED = "foresight_store_samples_rejected_total"
STORE_WRITE_FAILURES = "foresight_store_write_failures_total"
STORE_WRITE_FAILING = "foresight_store_write_failing"
LEADER = "foresight_leader"
HISTORY_BACKFILL_SAMPLES = "foresight_history_backfill_samples_total"
HISTORY_BACKFILL_QUERIES = "foresight_history_backfill_queries_total"
HISTORY_BACKFILL_PENDING = "foresight_history_backfill_pending_series"

# -- remote write, as Prometheus' prometheus_remote_storage_* (labels remote_name, url) -----
REMOTE_SAMPLES = "foresight_remote_storage_samples_total"
REMOTE_SAMPLES_FAILED = "foresight_remote_storage_samples_failed_total"
REMOTE_SAMPLES_RETRIED = "foresight_remote_storage_samples_retried_total"
REMOTE_SAMPLES_STANDBY = "foresight_remote_storage_samples_standby_total"
REMOTE_SAMPLES_PENDING = "foresight_remote_storage_samples_pending"
REMOTE_BYTES = "foresight_remote_storage_bytes_total"
REMOTE_HIGHEST_TIMESTAMP = "foresight_remote_storage_highest_timestamp_in_seconds"
REMOTE_HIGHEST_SENT_TIMESTAMP = "foresight_remote_storage_queue_highest_sent_timestamp_seconds"
REMOTE_SHARDS = "foresight_remote_storage_shards"
REMOTE_SHARDS_MIN = "foresight_remote_storage_shards_min"
REMOTE_SHARDS_MAX = "foresight_remote_storage_shards_max"
REMOTE_SHARDS_DESIRED = "foresight_remote_storage_shards_desired"
REMOTE_WAL_SEGMENT = "foresight_remote_storage_wal_current_segment"
REMOTE_WAL_SEGMENTS_SKIPPED = "foresight_remote_storage_wal_segments_skipped_total"

# -- the autoscalers ------------------------------------------------------------------------
AUTOSCALER_INFO = "foresight_autoscaler_info"
AUTOSCALER_LOAD = "foresight_autoscaler_load"
AUTOSCALER_FORECAST = "foresight_autoscaler_forecast"
AUTOSCALER_CURRENT_REPLICAS = "foresight_autoscaler_current_replicas"
AUTOSCALER_DESIRED_REPLICAS = "foresight_autoscaler_desired_replicas"
AUTOSCALER_MIN_REPLICAS = "foresight_autoscaler_min_replicas"
AUTOSCALER_MAX_REPLICAS = "foresight_autoscaler_max_replicas"
AUTOSCALER_RECOMMENDED_CPU = "foresight_autoscaler_recommended_cpu_cores"
AUTOSCALER_RECOMMENDED_MEMORY = "foresight_autoscaler_recommended_memory_bytes"
AUTOSCALER_FORECAST_ERROR = "foresight_autoscaler_forecast_error_ratio"
AUTOSCALER_CONDITION = "foresight_autoscaler_condition"
AUTOSCALER_DECISIONS = "foresight_autoscaler_decisions_total"

# -- the alert engine -----------------------------------------------------------------------
ALERTS = "foresight_alerts"
NOTIFICATIONS = "foresight_notifications_total"
NOTIFICATION_OUTBOX_SIZE = "foresight_notification_outbox_size"
NOTIFICATION_DEAD_LETTERS = "foresight_notification_dead_letters"
RULE_GROUP_LAST_EVALUATION = "foresight_rule_group_last_evaluation_seconds"
RULE_GROUP_LAST_DURATION = "foresight_rule_group_last_duration_seconds"
RULE_GROUP_FAILURES = "foresight_rule_group_evaluation_failures_total"
RULE_CONFIG_RELOAD_OK = "foresight_rule_config_last_reload_successful"
SILENCES = "foresight_silences"

# -- the cost model -------------------------------------------------------------------------
COST_HOURLY = "foresight_cost_hourly"
COST_NODE_HOURLY = "foresight_cost_node_hourly"
COST_IDLE_HOURLY = "foresight_cost_idle_hourly"
COST_NODE_PRICE = "foresight_cost_node_price"
COST_PRICE = "foresight_cost_price"
