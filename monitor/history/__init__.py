"""History: backtests over downloaded prices, tape building and charts."""
