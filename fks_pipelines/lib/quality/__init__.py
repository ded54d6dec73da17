"""Data-quality rules (Great Expectations), with no Dagster inside."""
