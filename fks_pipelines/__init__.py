"""fks_pipelines: a Dagster data-and-ML platform for crypto trading.

Raw exchange market data -> dbt-modeled PostgreSQL/TimescaleDB tables -> backtests -> embeddings ->
a daily trading recommendation. See README.md for the two commands that set everything up.
"""

__version__ = "0.1.0"
