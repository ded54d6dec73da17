"""A tiny code location for the launcher tests: one GPU-marked asset (it records the GPU it was given) and one
plain asset, importable by the run's subprocess."""

import os
import time
from pathlib import Path

from dagster import Definitions, asset, define_asset_job, reconstructable

from fks_pipelines.defs.shared import GPU_OP_TAGS, GPU_POOL


@asset(op_tags=GPU_OP_TAGS, pool=GPU_POOL)
def embeddings() -> None:
    Path(os.environ["FKS_TEST_GPU_OUT"]).write_text(os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    time.sleep(float(os.environ.get("FKS_TEST_GPU_SLEEP", "0")))


@asset
def prices() -> int:
    return 1


defs = Definitions(
    assets=[embeddings, prices], jobs=[define_asset_job("everything", [embeddings, prices], tags={"team": "quant"})]
)


def everything():
    return defs.resolve_job_def("everything")


RECONSTRUCTABLE = reconstructable(everything)
