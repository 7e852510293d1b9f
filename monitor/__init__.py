"""mcap-monitor: market-capitalisation milestone alerts."""

__version__ = "0.1.0"
