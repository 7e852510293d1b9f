"""The pure core: money, valuation and the rule state machine. No I/O, no clock."""
