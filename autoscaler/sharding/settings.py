"""Settings of shards (``sharding``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ShardingSettings"]


class ShardingSettings(BaseModel):
    """Replicas that split the nodes to scrape and the autoscalers to reconcile. Each holds a
    Lease of its own (in `leader.namespace`, with `leader.lease_seconds`); rules and
    notifications stay with the leader. Shards share one store: they need `storage.query_url`
    and `remote_write`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replicas: int = Field(
        1,
        ge=1,
        le=1000,
        description="Replicas sharing the work (the chart's StatefulSet size); 1: no shards, "
        "the leader acts for the whole cluster and a standby waits.",
    )
    group: str = Field(
        "foresight",
        min_length=1,
        max_length=40,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the shard group: the label of its members' Leases (the chart "
        "sets its release name).",
    )
