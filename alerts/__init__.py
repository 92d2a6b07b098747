"""Alerts: rule files, alert state, templating, routing, silences, inhibition and delivery."""
