"""PromQL shared by the dashboards: selectors wired to the template variables, and the joins
that attribute pods to workloads and autoscalers.

Every selector carries ``cluster=~"$cluster"``: one Grafana can show several clusters when
Prometheus adds a ``cluster`` label (external labels or relabelling); without it, "All"
(``.*``) also matches the absent label.
"""

from __future__ import annotations

from runtime import names, names_kubelet

CLUSTER = 'cluster=~"$cluster"'
NAMESPACE = 'namespace=~"$namespace"'
WORKLOAD = 'workload=~"$workload"'
NODE = 'node=~"$node"'
AUTOSCALER = 'autoscaler=~"$autoscaler"'

HOURS_PER_MONTH = 730  # OpenCost's month; the cost model uses the same
GIB = 1073741824
ACTIVE_PHASES = "Running|Pending"  # pods that hold node resources


def label_values(series: str, label: str) -> str:
    """A template variable's query: the values ``label`` takes on ``series`` (a metric name or
    a selector)."""
    return f"label_values({series}, {label})"


def sel(metric: str, *matchers: str, **labels: str) -> str:
    """``metric{cluster=~"$cluster", ...}``.

    ``matchers`` are written out (``NAMESPACE``...); ``labels`` are label=value pairs where a
    value starting with ``~`` is a regex, with ``!`` a negation and ``!~`` a negated regex.
    """
    written = [*matchers]
    for name, given in labels.items():
        op, value = "=", given
        for prefix, operator in (("!~", "!~"), ("~", "=~"), ("!", "!=")):
            if given.startswith(prefix):
                op, value = operator, given[len(prefix) :]
                break
        written.append(f'{name}{op}"{value}"')
    return f"{metric}{{{', '.join((CLUSTER, *written))}}}"


def cadvisor(metric: str, *matchers: str, **labels: str) -> str:
    """A cAdvisor series as a kube-prometheus scrape of the kubelets labels it, and as
    foresight stores (and exports) it: the same query reads either."""
    return sel(
        metric,
        *matchers,
        job=names_kubelet.KUBELET_JOB,
        metrics_path=names_kubelet.CADVISOR_PATH,
        **labels,
    )


def cadvisor_rate(metric: str, *matchers: str, **labels: str) -> str:
    """Per-second rate of a cAdvisor counter over Grafana's rate interval."""
    return f"rate({cadvisor(metric, *matchers, **labels)}[$__rate_interval])"


def throttled_ratio(*matchers: str, keys: str = "cluster, namespace, pod, container") -> str:
    """Per container (``keys``): the share of its CFS periods in which it was throttled (0 to
    1), as the kubernetes-mixin's CPUThrottlingHigh reads it."""
    throttled = cadvisor(names_kubelet.CFS_THROTTLED_PERIODS, *matchers, container="!")
    periods = cadvisor(names_kubelet.CFS_PERIODS, *matchers, container="!")
    return (
        f"sum by ({keys}) (increase({throttled}[$__rate_interval])) / "
        f"sum by ({keys}) (increase({periods}[$__rate_interval]))"
    )


def active_requests(resource: str, *matchers: str) -> str:
    """Container requests of pods that are scheduled and not finished."""
    requests = sel(names.CONTAINER_REQUESTS, *matchers, resource=resource)
    phase = sel(names.POD_PHASE, *_pod_scope(matchers), phase="~" + ACTIVE_PHASES)
    return f"({requests} and on (cluster, namespace, pod) {phase})"


def _pod_scope(matchers: tuple[str, ...]) -> tuple[str, ...]:
    # Pod-level series carry namespace, but no node, container or autoscaler label.
    return tuple(m for m in matchers if m.startswith("namespace"))


def owners(*matchers: str) -> str:
    """One series per pod with its ``workload_kind`` and ``workload`` labels.

    ``max by`` drops the ``instance`` label, so two foresight replicas exporting the same pod
    do not break the joins.
    """
    return (
        "max by (cluster, namespace, pod, workload_kind, workload) "
        f"({sel(names.POD_OWNER, *matchers)})"
    )


def by_workload(expr: str, agg: str = "sum", by: str = "cluster, namespace, workload") -> str:
    """A per-pod or per-container ``expr`` aggregated per workload (or ``by`` other labels
    including ``workload``), filtered by the namespace and workload variables."""
    return (
        f"{agg} by ({by}) "
        f"({expr} * on (cluster, namespace, pod) group_left (workload_kind, workload) "
        f"{owners(NAMESPACE, WORKLOAD)})"
    )


def one_per(keys: str, expr: str) -> str:
    """``expr`` with at most one series per value of ``keys``: the right-hand side of a
    ``group_left`` join, which fails outright on a duplicate (two autoscalers on one workload,
    a label that changed within the lookback window, two foresight replicas)."""
    return f"topk by ({keys}) (1, {expr})"


def autoscaler_pods(*matchers: str) -> str:
    """One series per pod scaled by a PredictiveAutoscaler, with its ``autoscaler`` label.

    A workload claimed by several autoscalers (a conflict: none of them acts) has its pods
    attributed to one of them.
    """
    info = sel(names.AUTOSCALER_INFO, *matchers)
    targets = (
        "max by (cluster, namespace, workload, autoscaler) "
        f'(label_replace({info}, "workload", "$1", "target", "(.*)"))'
    )
    return (
        "max by (cluster, namespace, pod, autoscaler) ("
        f"{owners(*_pod_scope(matchers))} "
        "* on (cluster, namespace, workload) group_left (autoscaler) "
        f"{one_per('cluster, namespace, workload', targets)})"
    )


def requests_per_autoscaler(resource: str, agg: str, *matchers: str) -> str:
    """``agg`` of a resource's container requests per autoscaler and container."""
    return (
        f"{agg} by (cluster, namespace, autoscaler, container) "
        f"({active_requests(resource, *_pod_scope(matchers))} "
        "* on (cluster, namespace, pod) group_left (autoscaler) "
        f"{autoscaler_pods(*matchers)})"
    )


def monthly_savings(resource: str, *matchers: str) -> str:
    """Monthly cost saved per autoscaler and container if its recommended request were
    applied to every pod: (Σ requests − recommended × pods) × on-demand price × 730.

    Negative when the recommendation is above today's requests.
    """
    metric, scale = {
        "cpu": (names.AUTOSCALER_RECOMMENDED_CPU, ""),
        "memory": (names.AUTOSCALER_RECOMMENDED_MEMORY, f" / {GIB}"),
    }[resource]
    recommended = f"max by (cluster, namespace, autoscaler, container) ({sel(metric, *matchers)})"
    total = requests_per_autoscaler(resource, "sum", *matchers)
    pods = requests_per_autoscaler(resource, "count", *matchers)
    price = f"max by (cluster) ({sel(names.COST_PRICE, resource=resource)})"
    return (
        f"(({total} - on (cluster, namespace, autoscaler, container) "
        f"({recommended} * on (cluster, namespace, autoscaler, container) {pods})){scale}) "
        f"* on (cluster) group_left () {price} * {HOURS_PER_MONTH}"
    )


def average_hourly(metric: str, window: str, *matchers: str) -> str:
    """Average over ``window`` of the sum of ``metric`` at each scrape.

    Summing per-series sums and dividing by the number of scrapes (counted on a series that
    is always exported) counts nodes and workloads that came and went for the time they
    existed, which ``sum(avg_over_time(...))`` would not.
    """
    scrapes = sel(names.COST_PRICE, resource="cpu")
    return (
        f"sum(sum_over_time({sel(metric, *matchers)}[{window}])) "
        f"/ max(count_over_time({scrapes}[{window}]))"
    )


# Every dashboard's first variable: the clusters whose nodes foresight reports.
CLUSTERS = label_values(names.NODE_INFO, "cluster")
