"""Per-lead state behind one interface: in memory for the backtest, Redis for the workers."""
