"""Collectors: scraping, list/watch, the clock and the embedded time-series store. They decide nothing."""
