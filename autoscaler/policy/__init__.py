"""Scaling policies: pure functions from load, forecast, state, settings and ``now`` to a
decision with a machine-readable reason.

``horizontal`` sets the replica count, ``vertical`` sizes container requests, ``joint``
combines them so that they do not fight.
"""
