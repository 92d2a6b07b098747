"""Stable names of the series foresight collects, stores and exports.

The store and ``/metrics`` use the same names, so a rule or dashboard query means the same
thing evaluated by foresight or by a Prometheus that scrapes it.
"""

from __future__ import annotations

PREFIX = "foresight_"

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
