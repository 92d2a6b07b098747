"""Grafana dashboards as code and the cost model's queries."""
