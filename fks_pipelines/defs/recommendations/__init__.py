"""The recommendations layer: group, key prefix and schema ``recommendations``: the daily recommendation and its
track record. Built by ``build_defs(settings)``: whether the daily recommendation runs vLLM in its own process
(then it is a GPU step) and whether an LLM is configured shape its definition."""

from dagster import Definitions

from fks_pipelines.defs.recommendations.assets import build_daily_recommendations, evaluation, track_record
from fks_pipelines.settings import Settings


def build_defs(settings: Settings) -> Definitions:
    daily = build_daily_recommendations(
        in_process_llm=settings.llm_engine == "in_process", llm_base_url=settings.llm_base_url
    )
    return Definitions(assets=[daily, track_record, evaluation])
