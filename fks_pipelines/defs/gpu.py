"""The platform's GPU marker, named once: assets that want an accelerator carry this op tag and run in this
Dagster concurrency pool. The GPU run launcher (fks_pipelines/launchers) routes runs holding such steps to a
GPU host; the pool bounds how many run at once (set its limit in dagster.yaml or the UI)."""

GPU_TAG_KEY = "fks/gpu"
GPU_TAGS = {GPU_TAG_KEY: "true"}
GPU_POOL = "gpu"
