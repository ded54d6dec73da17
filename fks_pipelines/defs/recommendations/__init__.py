"""The recommendations layer: group, key prefix and schema ``recommendations``: the daily recommendation and its
track record."""

from dagster import Definitions

from fks_pipelines.defs.recommendations.assets import daily_recommendations, evaluation, track_record

defs = Definitions(assets=[daily_recommendations, track_record, evaluation])
