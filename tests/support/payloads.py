"""Payloads the tests write themselves in the formats real peers send, so that parsers are
tested without the external material."""

from __future__ import annotations

__all__ = ["kubelet_resource_metrics"]


def kubelet_resource_metrics(pods: int = 3) -> str:
    """A kubelet ``/metrics/resource`` response for ``pods`` pods of one container, in the
    layout kubelets write (as the simulator renders it)."""
    lines = [
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed",
        "# TYPE container_cpu_usage_seconds_total counter",
    ]
    for i in range(pods):
        labels = f'container="app",namespace="shop",pod="web-{i}"'
        lines.append(f"container_cpu_usage_seconds_total{{{labels}}} {10.5 + i} 1700000000123")
    lines.append("# TYPE container_memory_working_set_bytes gauge")
    for i in range(pods):
        labels = f'container="app",namespace="shop",pod="web-{i}"'
        lines.append(
            f"container_memory_working_set_bytes{{{labels}}} {2.5e7 + i:.6e} 1700000000123"
        )
        lines.append(f"container_start_time_seconds{{{labels}}} 1.6999e+09 1700000000123")
    lines += [
        "# TYPE node_cpu_usage_seconds_total counter",
        "node_cpu_usage_seconds_total 357.35491 1700000000120",
        "node_memory_working_set_bytes 1.616273408e+09 1700000000120",
    ]
    for i in range(pods):
        lines.append(f'pod_cpu_usage_seconds_total{{namespace="shop",pod="web-{i}"}} {10.5 + i}')
        lines.append(f'pod_memory_working_set_bytes{{namespace="shop",pod="web-{i}"}} 2.6e+07')
    lines += ["# TYPE resource_scrape_error gauge", "resource_scrape_error 0"]
    return "\n".join(lines) + "\n"
