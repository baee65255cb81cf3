# After `hercules recipe run recipes/quickstart.yaml` (which saves its model in runs/quickstart/model):
# the trained model with memory, with the quickstart's evaluation settings (prompts, few_shot, samples), at
# lengths beyond its training, each context longer than 512 tokens read into the memory in segments of 512.
hercules eval runs/quickstart/model --recipe recipes/quickstart.yaml --lengths 0k,1k,2k,4k --segment-length 512 --out runs/quickstart/eval-segments
# The same backbone without memory, read the same way: a no-memory baseline (warned; noted in results.json).
hercules eval smollm2-135m --recipe recipes/quickstart.yaml --lengths 0k,1k,2k,4k --segment-length 512 --out runs/quickstart/eval-segments-backbone
