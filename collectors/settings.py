"""Settings of the collectors: how often and how to scrape kubelets and pods."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime import names_kubelet
from tsdb.go_regex import compile_matcher

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

# cAdvisor families kept by default, in the spirit of kube-prometheus (which drops most of
# cAdvisor's): what the kubernetes-mixin rules and dashboards read, plus throttled seconds.
DEFAULT_CADVISOR_METRICS = (
    names_kubelet.CPU_USAGE,
    names_kubelet.CFS_PERIODS,
    names_kubelet.CFS_THROTTLED_PERIODS,
    names_kubelet.CFS_THROTTLED_SECONDS,
    names_kubelet.MEMORY_WORKING_SET,
    names_kubelet.MEMORY_RSS,
    names_kubelet.MEMORY_CACHE,
    names_kubelet.OOM_EVENTS,
    names_kubelet.NET_RX_BYTES,
    names_kubelet.NET_TX_BYTES,
    names_kubelet.NET_RX_PACKETS,
    names_kubelet.NET_TX_PACKETS,
    names_kubelet.NET_RX_ERRORS,
    names_kubelet.NET_TX_ERRORS,
    names_kubelet.NET_RX_DROPPED,
    names_kubelet.NET_TX_DROPPED,
    names_kubelet.FS_USAGE,
    names_kubelet.FS_READS_BYTES,
    names_kubelet.FS_WRITES_BYTES,
    names_kubelet.FS_READS,
    names_kubelet.FS_WRITES,
)


class CollectorSettings(BaseModel):
    """Scraping of kubelets' ``/metrics/resource`` and annotated pods."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scrape_interval_seconds: float = Field(
        15, ge=1, le=600, description="Time between two collection cycles."
    )
    scrape_timeout_seconds: float = Field(
        10, gt=0, le=600, description="Timeout of one kubelet or pod scrape."
    )
    concurrency: int = Field(64, ge=1, le=10_000, description="Scrapes in flight at once.")
    stagger_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Scrape starts are spread over this long, so kubelets are not hit at once.",
    )
    scrape_pods: bool = Field(
        True,
        description='Scrape pods annotated `prometheus.io/scrape: "true"` every cycle, so '
        "that Query metrics can use their application metrics. Off: kubelets only.",
    )
    kubelet_via_proxy: bool = Field(
        False,
        description="Reach kubelets through the API server's node proxy instead of directly.",
    )
    kubelet_scheme: Literal["https", "http"] = Field(
        "https", description="Scheme of direct kubelet scrapes."
    )
    kubelet_port: int = Field(
        10250,
        ge=1,
        le=65535,
        description="Kubelet port when the node does not publish one in daemonEndpoints.",
    )
    kubelet_address_types: tuple[str, ...] = Field(
        ("InternalIP", "ExternalIP", "Hostname"),
        description="Node address types to scrape, in order of preference.",
    )
    ca_file: Path | None = Field(
        SERVICE_ACCOUNT_DIR / "ca.crt",
        description="CA bundle that signs kubelet certificates (the cluster CA).",
    )
    insecure_skip_tls_verify: bool = Field(
        False, description="Accept any kubelet certificate. Only for test clusters."
    )
    token_file: Path | None = Field(
        SERVICE_ACCOUNT_DIR / "token",
        description="Bearer token for kubelets (re-read every cycle, so rotation works).",
    )
    max_response_bytes: int = Field(
        16 * 2**20, ge=1024, description="Larger responses are cut off and counted as errors."
    )
    backoff_initial_seconds: float = Field(
        5, gt=0, le=3600, description="First pause before scraping a failing target again."
    )
    backoff_max_seconds: float = Field(
        300, gt=0, le=86_400, description="Longest pause for a failing target (doubling)."
    )
    cadvisor: bool = Field(
        True,
        description="Scrape every kubelet's `/metrics/cadvisor` (CPU throttling, network, "
        "filesystem, memory detail, OOM events) into the store.",
    )
    cadvisor_interval_seconds: float = Field(
        30,
        ge=1,
        le=3600,
        description="Time between two cAdvisor scrapes of a kubelet (taken with the "
        "collection cycle that follows, so a multiple of scrape_interval_seconds is exact).",
    )
    cadvisor_metrics: tuple[str, ...] = Field(
        DEFAULT_CADVISOR_METRICS,
        description="cAdvisor metric names kept; every other family is dropped unparsed. Rows "
        "without a pod are dropped, and so are pod-level rows (no container) except network.",
    )
    cadvisor_drop_labels: tuple[str, ...] = Field(
        ("id", "name"),
        description="cAdvisor labels dropped before storing (the cgroup path and the runtime's "
        "container id: new with every restart, and redundant with namespace/pod/container).",
    )
    cadvisor_drop_interfaces: str = Field(
        "(tunl|gre|gretap|erspan|ip_vti|ip6_vti|ip6gre|ip6tnl|sit)[0-9]+",
        description="Network rows of interfaces matching this regular expression (RE2, "
        "anchored) are dropped: the tunnel devices a kernel module adds to every pod's network "
        "namespace, always at zero. Empty: none dropped.",
    )
    summary: bool = Field(
        True,
        description="Read every kubelet's `/stats/summary`: ephemeral storage and volumes per "
        "pod (`kubelet_volume_stats_*` for PersistentVolumeClaims), node and image "
        "filesystems.",
    )
    summary_interval_seconds: float = Field(
        60, ge=1, le=3600, description="Time between two `/stats/summary` reads of a kubelet."
    )
    kubelet_stats_on_metrics: bool = Field(
        True,
        description="Also export the kept cAdvisor and summary series on `/metrics` (leader "
        'only), labelled `job="kubelet"` as a kube-prometheus scrape labels them. Turn off '
        "when a Prometheus scrapes the kubelets itself: it would get the same series twice.",
    )

    @field_validator("cadvisor_drop_interfaces")
    @classmethod
    def _interfaces_compile(cls, pattern: str) -> str:
        if pattern:
            compile_matcher(pattern, dot_nl=True)  # its RegexError names the pattern
        return pattern


class KubernetesSettings(BaseModel):
    """How to reach the Kubernetes API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kubeconfig: Path | None = Field(
        None, description="Kubeconfig file; unset means in-cluster config, then ~/.kube/config."
    )
    context: str | None = Field(
        None, description="Kubeconfig context; unset means the current one."
    )
    request_timeout_seconds: float = Field(30, gt=0, le=600, description="Timeout of one API call.")
    retry_initial_seconds: float = Field(
        0.5, gt=0, le=60, description="First retry delay after an API error."
    )
    retry_max_seconds: float = Field(
        30, gt=0, le=600, description="Longest retry delay (exponential backoff)."
    )
    retry_attempts: int = Field(6, ge=0, le=100, description="Retries before an API call fails.")
    list_page_size: int = Field(
        500, ge=1, le=10_000, description="Objects per page when listing (limit/continue)."
    )
    watch_timeout_seconds: int = Field(
        300, ge=1, le=3600, description="Server-side timeout of one watch request."
    )
    resync_seconds: float = Field(
        600, ge=10, le=86_400, description="Full relist of every watched kind this often."
    )
