#!/usr/bin/env bash
# The GPU checks and benchmarks of the fused Triton chunk loop, in one go: about 10 minutes on an H100 or H200.
#
# On the CPU machine, once, from the repository root (Python packages the GPU image lacks travel as wheels in
# .whl/, which git ignores through .git/info/exclude):
#     bash hercules/bench/gpu_session.sh --fetch-wheels
# On the GPU machine, from the repository root (carry .whl):
#     bash hercules/bench/gpu_session.sh            # every step, at most about 9 minutes
#     bash hercules/bench/gpu_session.sh layer      # or some of them: correctness kernel layer segments backbone
# Results go to $OUT (./gpu_out without it): log.txt and one JSON file per benchmark. Each step has its own
# time limit, so a slow or failing step leaves the others their time.
set -uo pipefail

WHEELS=(
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    titans-pytorch==0.5.5 accelerated-scan==0.3.1 assoc-scan==0.0.6 axial-positional-embedding==0.3.12
    einx==0.4.3 frozendict==2.5.1 hyper-connections==0.4.11 loguru==0.7.3 pyvers==0.2.3
    rotary-embedding-torch==0.9.1 tensordict==0.15.3 torch-einops-utils==0.2.0 x-transformers==2.31.10
)

if [ "${1:-}" = "--fetch-wheels" ]; then
    exclude="$(git rev-parse --git-common-dir)/info/exclude"
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    du -sh .whl
    exit
fi

OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
step() { echo; echo "== $1 ($(date -u +%T))"; }
bench() { python3 -m hercules.bench."$@"; }

correctness() {
    step "1. correctness: compiled kernels against the CPU reference, and the CUDA paths of the memory tests"
    timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_triton_cuda.py \
        tests/test_memory_reference.py -k "cuda or compiled_kernels"
}
kernel() {
    step "2. the chunk loop alone, rows N = 2, 32, 256 (fraction of the float32 peak)"
    timeout 100 bench kernel --device cuda --rows 2 32 256 --seconds 0.3 \
        --configs 2048:32:16 2048:64:16 2048:64:64 --json "$OUT/kernel.json"
}
layer() {
    step "3. memory layer: fast (torch), triton, titans, titans-bs (B = 2; the kernels take d <= 64)"
    timeout 110 bench memory --device cuda --seconds 0.5 --timeout 60 --impls fast triton titans titans-bs \
        --configs 512:64:16 512:64:64 2048:64:16 2048:64:64 --json "$OUT/memory.json"
}
segments() {
    step "4. segment training: 8 segments of 256, the state carried"
    timeout 60 bench memory --device cuda --seconds 0.5 --timeout 60 --impls fast triton titans \
        --configs 2048:64:16 2048:64:64 --segments 8 --json "$OUT/segments.json"
}
backbone() {
    step "5. SmolLM2-135M shape, memory in 2 layers (9 heads of 64), bf16 autocast, eager, triton backend"
    timeout 130 bench backbone --device cuda --models smollm2-135m-random --precision bf16 --rounds 3 \
        --heads 9 --chunk-size 64 --segments 8 --backend triton --json "$OUT/backbone.json"
}

# "all" (the default) runs every step, at most about 9 minutes; or name steps: correctness kernel layer ...
steps=("$@")
[ ${#steps[@]} -eq 0 ] || [ "${steps[0]}" = "all" ] && steps=(correctness kernel layer segments backbone)
{
    step "machine"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
    for name in "${steps[@]}"; do "$name"; done
    step "done"
} 2>&1 | tee "$OUT/log.txt"
