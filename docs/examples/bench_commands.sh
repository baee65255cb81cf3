pip install -e ".[bench]"                 # titans-pytorch 0.5.5, the baseline of the memory benchmark
hercules bench memory                     # or: python -m hercules.bench.memory  (--quick, --device cuda, --compile)
hercules bench backbone                   # or: python -m hercules.bench.backbone
