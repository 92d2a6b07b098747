"""``foresight demo``: the whole service against the simulated cluster, on a virtual clock."""
