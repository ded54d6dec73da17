"""The built-in strategies: strategy files of the same interface as the user's (``FKS_STRATEGIES_DIR``), loaded
by the same loader (``lib/quant/strategy_files.py``); see docs/strategies.md."""
