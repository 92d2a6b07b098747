"""Collectors: scraping kubelets and pods, list/watch of the cluster, counters to rates.

They write to the store and export on /metrics; they decide nothing."""
