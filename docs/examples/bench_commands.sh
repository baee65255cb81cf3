pip install -e ".[bench]"                 # titans-pytorch 0.5.5, the baseline of the memory benchmark
hercules bench memory                     # or: python -m hercules.bench.memory  (--quick, --device cuda, --compile)
hercules bench memory --rounds 3 --configs 512:64:64 2048:64:64   # medians of 3 interleaved rounds, two rows
hercules bench memory --count-ops         # and the kernels one step launches
hercules bench backbone                   # or: python -m hercules.bench.backbone
hercules bench cli_startup --rounds 5    # import and wall time of `hercules --help`, `recipe validate`, `recipe list`
