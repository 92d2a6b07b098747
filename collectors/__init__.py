"""Collectors: scraping, list/watch, the clock and the time-series store. They decide nothing."""
