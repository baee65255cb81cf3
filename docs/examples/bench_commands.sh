pip install -e ".[bench]"                 # titans-pytorch 0.5.5, the baseline of the memory benchmark
hercules bench memory                     # or: python -m hercules.bench.memory  (--quick, --device cuda, --compile)
hercules bench memory --rounds 3 --configs 512:64:64 2048:64:64   # medians of 3 interleaved rounds, two rows
hercules bench memory --count-ops         # and the kernels one step launches
hercules bench backbone                   # or: python -m hercules.bench.backbone
hercules bench cli_startup --rounds 5    # import and wall time of `hercules --help`, `recipe validate`, `recipe list`
hercules bench memory --device cuda --impls fast triton              # the fused Triton chunk loop against torch
hercules bench memory --configs 2048:64:16 --segments 8              # segment training: 8 x 256, state carried
hercules bench kernel --device cuda --rows 2 32 256                  # the chunk loop alone, by rows (batch x heads)
bash hercules/bench/gpu_session.sh --fetch-wheels                    # on the CPU machine, before a GPU session
bash hercules/bench/gpu_session.sh                                   # on the GPU machine: every check, ~9 minutes
hercules bench long_context --model runs/quickstart/model --lengths 1k 4k 16k 64k 128k --samples 1   # memory vs length
