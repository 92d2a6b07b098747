"""Shards: replicas that split the nodes to scrape and the autoscalers to reconcile.

Each replica holds a Lease of its own (:mod:`autoscaler.sharding.membership`); the live Leases
are the members, and rendezvous hashing over them (:mod:`autoscaler.sharding.hashing`) gives
every node and every autoscaler one owner. :class:`autoscaler.sharding.view.ShardView` decides
when a replica may act on what it owns, so that no two act on one key at once.
"""
