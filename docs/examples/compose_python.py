"""Compose a memory-augmented model in Python, without any YAML: backbone + memory + injection, then use it."""

import torch

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.backbones.tokenizer import byte_tokenizer
from hercules.injection import AugmentConfig, memory_disabled, memory_layers, memory_parameters
from hercules.memory import MemoryConfig

torch.manual_seed(0)
backbone = tiny_model("llama")  # any HF causal LM: load_pretrained("smollm2-135m") gives a real one
tokenizer = byte_tokenizer()
ids = tokenizer("Mary went to the kitchen. Where is Mary?", return_tensors="pt").input_ids  # [1, T]
with torch.no_grad():
    reference = backbone(ids).logits  # before augmenting: augment wraps layers in place

config = AugmentConfig(
    memory=MemoryConfig(
        model={"kind": "mlp", "depth": 2, "expansion": 2.0},
        rule={"kind": "titans", "max_lr": 1e-2},
        heads=2,
        chunk_size=4,
    ),
    # memory as context, learning from the attention output as in Titans (the default, write="input", is cheaper)
    injection={"kind": "mac", "gate": {"kind": "sigmoid"}, "write": "attention_output"},
    layers=[0, -1],  # the first and the last decoder layer
    overrides={-1: {"injection": {"kind": "mag", "gate": "scalar"}}},  # the last one: memory as a gate
)
model = hercules.augment(backbone, config)
print({index: type(layer).__name__ for index, layer in memory_layers(model).items()})  # {0: 'MAC', 1: 'MAG'}

# Identity at initialisation: every gate starts closed, so the logits are the backbone's.
with torch.no_grad():
    torch.testing.assert_close(model(ids).logits, reference, rtol=0, atol=1e-6)

# It generates like any HF model; the memory keeps updating, chunk by chunk, as tokens arrive. At
# initialisation the greedy generation is the backbone's (memory_disabled runs the model as its backbone).
generate = dict(max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
out = model.generate(ids, **generate)
with memory_disabled(model):
    assert torch.equal(model.generate(ids, **generate), out)

# Train the memory only: freeze the backbone, optimise what augmentation added.
model.requires_grad_(False)
params = [p for _, p in memory_parameters(model)]
for p in params:
    p.requires_grad_(True)
optimizer = torch.optim.AdamW(params, lr=1e-3)
loss = model(ids, labels=ids).loss
loss.backward()
optimizer.step()
assert all(p.grad is not None for p in params)
