"""The platform's jobs. ``all_assets_job`` is everything (the demo and full rebuilds); ``daily_job`` is what runs
every day (everything but the walk-forward re-optimization, which ``reoptimize_job`` runs weekly);
``archive_import_job`` imports files from the landing folder."""

from pathlib import Path

from dagster import AssetKey, AssetSelection, Config, OpExecutionContext, define_asset_job, job, op
from pydantic import Field

from fks_pipelines.defs.shared import FRESHNESS_CHECKS, LAYERS, PostgresResource, daily_partitions
from fks_pipelines.lib.sources.landing import import_landed_file

STRATEGY_CHOICES = AssetKey(["analytics", "strategy_choices"])
# Every layer's assets and their data-quality checks; freshness checks run on their own sensor.
EVERYTHING = AssetSelection.groups(*LAYERS) - AssetSelection.checks(*FRESHNESS_CHECKS)

all_assets_job = define_asset_job(
    "all_assets_job",
    selection=EVERYTHING,
    partitions_def=daily_partitions,
    description=(
        "Everything, in dependency order: raw market data -> dbt -> analytics -> knowledge -> the daily recommendation"
        " -> the record's documents (trades, positions, past recommendations) and their embeddings."
    ),
)
daily_job = define_asset_job(
    "daily_job",
    selection=EVERYTHING - AssetSelection.assets(STRATEGY_CHOICES),
    partitions_def=daily_partitions,
    description="The daily run: the previous day end to end with the latest walk-forward choice (re-optimized weekly).",
)
reoptimize_job = define_asset_job(
    "reoptimize_job",
    selection=AssetSelection.assets(STRATEGY_CHOICES),
    description="Walk-forward re-optimization of every strategy per symbol (weekly).",
)


class LandingConfig(Config):
    """What to import, as the archive landing sensor requests it (the folder is FKS_LANDING_DIR's)."""

    landing_dir: str = Field(description="The landing folder (FKS_LANDING_DIR).")
    files: list[str] = Field(description="File names in the landing folder to import.")


@op(description="Import each file (checksum-verified), then move it to imported/ or, with the reason, quarantine/.")
def import_landed_files(context: OpExecutionContext, config: LandingConfig, database: PostgresResource) -> None:
    landing = Path(config.landing_dir)
    failed = []
    with database.connection() as conn:
        for name in config.files:
            path = landing / name
            if not path.exists():
                context.log.warning(f"{name}: no longer in {landing} (imported by an earlier run?)")
                continue
            result = import_landed_file(conn, path, landing)
            if result.error:
                failed.append(name)
                context.log.error(f"{name}: quarantined: {result.error}")
            else:
                context.log.info(f"{name}: {result.rows} rows loaded, moved to {result.moved_to.parent.name}/")
    if failed:
        context.log.warning(f"{len(failed)} of {len(config.files)} file(s) quarantined (see {landing / 'quarantine'})")


@job(description="Import Binance archive files dropped into the landing folder (FKS_LANDING_DIR).")
def archive_import_job():
    import_landed_files()
