"""The base layer every other part may use: the clock, signal handling, Kubernetes quantities
and pausing the garbage collector around bulk work. It imports nothing of foresight."""
