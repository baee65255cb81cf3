"""What trains (PEFT presets), saving and loading (safetensors + JSON), and merging LoRA without losing the memory."""

import tempfile

import torch

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.injection import memory_layers
from hercules.injection.io import load_augmented, save_augmented
from hercules.injection.peft import PeftSettings, apply_peft

torch.manual_seed(0)
model = hercules.augment(tiny_model("qwen2"), {"injection": {"kind": "mac"}, "layers": [-1]})
# memory + LoRA (r 4) on the backbone's attention and MLP projections; the backbone's own weights are frozen.
model = apply_peft(model, PeftSettings(preset="memory_lora", lora_r=4, lora_alpha=8))
trainable = {name for name, p in model.named_parameters() if p.requires_grad}
assert any("lora_A" in n for n in trainable) and any("memory.to_qkv" in n for n in trainable)
assert not any(n.endswith("q_proj.base_layer.weight") for n in trainable)

# One training step, so that the saved model differs from a fresh one.
ids = torch.randint(3, 259, (2, 16))
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
model(input_ids=ids, labels=ids).loss.backward()
optimizer.step()
model.eval()
with torch.no_grad():
    before = model(input_ids=ids).logits

with tempfile.TemporaryDirectory() as folder:
    save_augmented(model, folder)  # hercules.json (config, PEFT settings, backbone) + hercules.safetensors
    restored = load_augmented(folder)  # rebuilt offline from the folder alone
    with torch.no_grad():
        torch.testing.assert_close(restored(input_ids=ids).logits, before)

# Merging LoRA into the backbone keeps the memory layers (and the same function).
merged = restored.merge_and_unload()
assert memory_layers(merged)
with torch.no_grad():
    torch.testing.assert_close(merged(input_ids=ids).logits, before, rtol=1e-4, atol=1e-5)
