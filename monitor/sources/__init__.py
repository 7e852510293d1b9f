"""Adapters that bring observations in: Yahoo (yfinance), ECB, rankings and recorded tapes."""
