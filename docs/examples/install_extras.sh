pip install -e ".[bench]"     # titans-pytorch 0.5.5, for the memory benchmark comparison
pip install -e ".[tracking]"  # TensorBoard and W&B tracking (WANDB_MODE=offline works without an account)
pip install -e ".[docs]"      # mkdocs-material and mkdocstrings, to build this site
pip install -e ".[dev]"       # pytest, ruff, and the trackers their tests use
