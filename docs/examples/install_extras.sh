pip install -e ".[bench]"     # titans-pytorch 0.5.5, for the memory benchmark comparison
pip install -e ".[tracking]"  # TensorBoard tracking
pip install -e ".[docs]"      # mkdocs-material and mkdocstrings, to build this site
pip install -e ".[dev]"       # pytest and ruff
