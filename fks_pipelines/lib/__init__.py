"""Pure code with no Dagster inside: sources, quality rules, database helpers."""
