"""The daily recommendation, its track record and the monthly profit split."""

from dagster import Definitions

from fks_pipelines.defs.recommendations.assets import daily_recommendations, profit_splits, track_record

defs = Definitions(assets=[daily_recommendations, track_record, profit_splits])
