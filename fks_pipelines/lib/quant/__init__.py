"""Quantitative code with no Dagster inside: indicators, strategies, backtest sweeps, walk-forward validation."""
