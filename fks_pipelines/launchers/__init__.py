"""The GPU run launcher: routes each run by the GPU marker of what it materializes (defs/shared.py) to a GPU
launcher (local slots, Docker or Kubernetes) and everything else to the default launcher. See gpu.py."""
