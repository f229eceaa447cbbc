"""The pure rules engine: models, loading and validation, compiler and evaluator.

Nothing in this package does I/O beyond reading the rules directory, and nothing in it
imports Faust, Redis or an HTTP framework, so the backtest and the streaming workers run
exactly the same decisions.
"""
