"""The GPU run launcher (routes runs that materialize GPU-marked assets to GPUs); arrives with its issue."""
