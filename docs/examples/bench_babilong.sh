# SmolLM2-135M-Instruct (offline, from PyPI) on qa1-qa5 at 0k, 1k and 2k, 100 samples each,
# generated from the original bAbI test files hidden in book text.
python -m hercules.evaluation.babilong_run --model smollm2-135m --tasks qa1,qa2,qa3,qa4,qa5 \
    --lengths 0k,1k,2k --samples 100 --source babi --babi-dir ../shared/data/babi \
    --background ../shared/data/books --threads 2 --out runs/smollm2-babilong
