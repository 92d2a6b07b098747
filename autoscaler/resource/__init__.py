"""The ``PredictiveAutoscaler`` custom resource: its model, its CRD, and reading objects."""
