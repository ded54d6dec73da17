"""Dagster definitions, one folder per layer of the data flow (raw -> marts -> analytics -> ...)."""

import warnings

from dagster import BetaWarning, PreviewWarning

# We use two features Dagster still labels beta/preview on purpose (single-run backfills of partition
# ranges; partitioned asset checks); say so once here instead of on every import.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
