"""Established names of what kubelets serve, kept as the kubelet and cAdvisor spell them.

foresight stores cAdvisor's series and the kubelet's volume statistics under their own names
and with the labels a kube-prometheus ``ServiceMonitor`` gives them (``job="kubelet"``,
``metrics_path``, ``node``, ``instance``), so that the kubernetes-mixin rules and dashboards
that use these names work on foresight's store as on a Prometheus scraping kubelets.
foresight's own names (``foresight_*``) are in :mod:`runtime.names`.
"""

from __future__ import annotations

KUBELET_JOB = "kubelet"
CADVISOR_PATH = "/metrics/cadvisor"
SUMMARY_PATH = "/stats/summary"

# -- cAdvisor (/metrics/cadvisor) -------------------------------------------------------------
CPU_USAGE = "container_cpu_usage_seconds_total"
CFS_PERIODS = "container_cpu_cfs_periods_total"
CFS_THROTTLED_PERIODS = "container_cpu_cfs_throttled_periods_total"
CFS_THROTTLED_SECONDS = "container_cpu_cfs_throttled_seconds_total"
MEMORY_WORKING_SET = "container_memory_working_set_bytes"
MEMORY_RSS = "container_memory_rss"
MEMORY_CACHE = "container_memory_cache"
MEMORY_SWAP = "container_memory_swap"
OOM_EVENTS = "container_oom_events_total"
NET_RX_BYTES = "container_network_receive_bytes_total"
NET_TX_BYTES = "container_network_transmit_bytes_total"
NET_RX_PACKETS = "container_network_receive_packets_total"
NET_TX_PACKETS = "container_network_transmit_packets_total"
NET_RX_ERRORS = "container_network_receive_errors_total"
NET_TX_ERRORS = "container_network_transmit_errors_total"
NET_RX_DROPPED = "container_network_receive_packets_dropped_total"
NET_TX_DROPPED = "container_network_transmit_packets_dropped_total"
FS_USAGE = "container_fs_usage_bytes"
FS_LIMIT = "container_fs_limit_bytes"
FS_READS_BYTES = "container_fs_reads_bytes_total"
FS_WRITES_BYTES = "container_fs_writes_bytes_total"
FS_READS = "container_fs_reads_total"
FS_WRITES = "container_fs_writes_total"

# cAdvisor's network series are the pod sandbox's: their rows have no container label.
NETWORK = frozenset(
    {
        NET_RX_BYTES,
        NET_TX_BYTES,
        NET_RX_PACKETS,
        NET_TX_PACKETS,
        NET_RX_ERRORS,
        NET_TX_ERRORS,
        NET_RX_DROPPED,
        NET_TX_DROPPED,
    }
)

# -- the kubelet's own names for PersistentVolumeClaim volumes (also on its /metrics) ----------
VOLUME_CAPACITY = "kubelet_volume_stats_capacity_bytes"
VOLUME_AVAILABLE = "kubelet_volume_stats_available_bytes"
VOLUME_USED = "kubelet_volume_stats_used_bytes"
VOLUME_INODES = "kubelet_volume_stats_inodes"
VOLUME_INODES_FREE = "kubelet_volume_stats_inodes_free"
VOLUME_INODES_USED = "kubelet_volume_stats_inodes_used"
