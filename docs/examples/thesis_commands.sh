hercules recipe run recipes/llama3.2-1b-backbone.yaml            # baseline: the backbone alone
hercules recipe run recipes/llama3.2-1b-lora.yaml                # baseline: the same fine-tune, no memory
hercules recipe run recipes/llama3.2-1b-alma-memory-only.yaml    # baseline: memory trained, backbone frozen
hercules recipe run recipes/llama3.2-1b-alma.yaml                # ALMA: memory in layers 14, 15 + LoRA
hercules recipe run recipes/llama3.2-1b-elma.yaml                # ELMA: memory in layers 1, 2 + LoRA
# the same recipe on several GPUs (DDP or FSDP, as `accelerate config` says):
accelerate launch -m hercules.cli.main recipe run recipes/llama3.2-1b-alma.yaml
