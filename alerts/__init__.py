"""Alerts: rule files, the PromQL evaluator, alert state and notification delivery."""
