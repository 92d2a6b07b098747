"""A simulated Kubernetes cluster on loopback, for the demo, tests and benchmarks."""
