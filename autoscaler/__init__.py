"""foresight's autoscaler: forecasting, scaling policies, actuation, settings and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("foresight")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
