"""PEFT presets, save/load round trips (with and without the backbone), merge_and_unload, diagnostics."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import hercules
from hercules.backbones.pretrained import load_pretrained
from hercules.backbones.tiny import tiny_model
from hercules.injection import MemoryLayer, memory_parameters
from hercules.injection.diagnostics import layer_diagnostics, log_diagnostics
from hercules.injection.io import load_augmented, save_augmented
from hercules.injection.peft import PeftSettings, apply_peft

X = torch.randint(3, 259, (2, 10), generator=torch.Generator().manual_seed(0))


def trained_like(family: str = "llama", preset: str = "memory_lora", kind: str = "mac") -> torch.nn.Module:
    """An augmented model whose gates, MAC projection and LoRA B matrices are non-zero, as after training."""
    torch.manual_seed(0)
    model = hercules.augment(tiny_model(family), {"injection": kind, "layers": [0, -1], "memory": {"chunk_size": 4}})
    model = apply_peft(model, PeftSettings(preset=preset, lora_r=4))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("gate.scale") or "context_proj" in name or "lora_B" in name:
                param.normal_(0, 0.3)
    return model.eval()


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(X).logits


def test_presets_choose_what_trains():
    memory = {n for n, _ in memory_parameters(trained_like(preset="memory"))}
    for preset in ("memory", "memory_lora", "full"):
        model = trained_like(preset=preset)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        added = {n for n, _ in memory_parameters(model)}
        lora = {n for n, _ in model.named_parameters() if "lora_" in n}
        assert added <= trainable and len(added) == len(memory)
        if preset == "memory":
            assert trainable == added
        elif preset == "memory_lora":
            assert trainable == added | lora and lora
            assert not any(".memory." in n or ".gate." in n for n in lora), "memory modules are no LoRA targets"
        else:
            assert trainable == {n for n, _ in model.named_parameters()}
    with pytest.raises(ValueError, match="preset"):
        PeftSettings(preset="lora_only")


def test_lora_is_added_without_a_future_warning():
    model = hercules.augment(tiny_model("llama"), {"layers": [0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # transformers' is_gradient_checkpointing deprecation
        lora = apply_peft(model, PeftSettings(preset="memory_lora", lora_r=4))
    assert any("lora_A" in name for name, _ in lora.named_parameters())


def lora_modules(model: torch.nn.Module) -> set[str]:
    """Names of the modules that got LoRA, written as the backbone names them (without ``base_layer``)."""
    names = {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_modules() if n.endswith(".lora_A")}
    return {n.replace("base_model.model.", "").replace(".base_layer", "") for n in names}


def test_lora_targets_mean_the_same_modules_with_and_without_memory():
    targets = ["layers.0.self_attn.q_proj", "layers.1.self_attn.v_proj"]  # layer 0 has memory, layer 1 not
    settings = PeftSettings(preset="memory_lora", lora_r=4, target_modules=targets)
    with_memory = apply_peft(hercules.augment(tiny_model("llama"), {"layers": [0]}), settings)
    twin = apply_peft(tiny_model("llama"), settings)  # the no-memory twin of a recipe
    expected = {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}
    assert lora_modules(with_memory) == lora_modules(twin) == expected
    spelled = settings.model_copy(update={"target_modules": ["layers.0.base_layer.self_attn.q_proj"]})
    model = apply_peft(hercules.augment(tiny_model("llama"), {"layers": [0]}), spelled)
    assert lora_modules(model) == {"model.layers.0.self_attn.q_proj"}
    bad = settings.model_copy(update={"target_modules": ["q_proj", "layers.7.self_attn.q_proj"]})
    with pytest.raises(ValueError, match=r"target_modules: 'layers.7.self_attn.q_proj' names no module"):
        apply_peft(tiny_model("llama"), bad)


@pytest.mark.parametrize("preset", ["memory", "memory_lora", "full"])
def test_save_load_round_trip_with_backbone(tmp_path, preset):
    model = trained_like(preset=preset)
    save_augmented(model, tmp_path)
    meta = json.loads((tmp_path / "hercules.json").read_text())
    assert meta["augment"]["layers"] == [0, -1] and meta["peft"]["preset"] == preset
    assert torch.equal(logits(load_augmented(tmp_path)), logits(model))


def test_save_without_backbone_restores_from_local_folder(tmp_path, byte_tok):
    backbone = tmp_path / "backbone"
    tiny_model("gemma3").save_pretrained(backbone)
    byte_tok.save_pretrained(backbone)
    torch.manual_seed(0)
    model = hercules.augment(
        load_pretrained(backbone)[0], {"injection": "mag", "layers": "all"}
    )
    model = apply_peft(model, {"preset": "memory_lora", "lora_r": 2})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("gate.scale") or "lora_B" in name:
                param.normal_(0, 0.3)
    save_augmented(model, tmp_path / "run", with_backbone=False, backbone=str(backbone), tokenizer=byte_tok)
    saved = (tmp_path / "run" / "hercules.safetensors").stat().st_size
    assert saved < sum(p.numel() * 4 for p in model.parameters()) / 2, "only the added weights are saved"
    assert torch.equal(logits(load_augmented(tmp_path / "run")), logits(model.eval()))
    with pytest.raises(ValueError, match="with_backbone=True"):
        save_augmented(trained_like(preset="full"), tmp_path / "full", with_backbone=False)


def test_merge_and_unload_keeps_memory():
    model = trained_like(preset="memory_lora")
    before = logits(model)
    merged = model.merge_and_unload()
    assert sum(isinstance(m, MemoryLayer) for m in merged.modules()) == 2
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged), before, rtol=0, atol=1e-5)
    assert (before - logits(tiny_model("llama"))).abs().max() > 1e-3


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="hercules.augment"):
        save_augmented(tiny_model("llama"), tmp_path)
    (tmp_path / "hercules.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="format"):
        load_augmented(tmp_path)


def test_diagnostics_are_tensors_and_measure_the_gate():
    model = hercules.augment(tiny_model("llama"), {"injection": "mag", "layers": [1], "memory": {"chunk_size": 4}})
    logits(model)
    closed = layer_diagnostics(model)
    assert set(closed) >= {f"layer1/{k}" for k in ("gate_mean", "contribution", "theta", "alpha", "eta",
                                                    "surprise_norm", "weight_norm", "momentum_norm")}
    assert all(isinstance(v, torch.Tensor) for v in closed.values())
    assert closed["layer1/contribution"] == 0 and closed["layer1/surprise_norm"] > 0
    layer = model.model.layers[1]
    with torch.no_grad():
        layer.gate.scale.fill_(0.5)
    logits(model)
    stats = log_diagnostics(model)
    expected = (0.5 * torch.sigmoid(layer.gate.proj(layer.last["hidden"]))).mean().item()
    assert stats["layer1/gate_mean"] == pytest.approx(expected, rel=1e-5)
    assert stats["layer1/contribution"] > 0


@pytest.mark.parametrize("family", ["llama", "qwen3", "gemma3"])
def test_hf_save_pretrained_round_trip(tmp_path, family):
    """The model's own save_pretrained (one file and sharded) and load_augmented give identical logits; gemma3
    ties its output embedding, which HF leaves out of the files."""
    torch.manual_seed(0)
    model = hercules.augment(tiny_model(family), {"injection": "mac", "layers": [0, -1], "memory": {"chunk_size": 4}})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("gate.scale") or "context_proj" in name:
                param.normal_(0, 0.3)
    model.eval()
    model.save_pretrained(tmp_path / "whole")
    model.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
    for folder in ("whole", "sharded"):
        loaded = load_augmented(tmp_path / folder)
        assert loaded.hercules_config == model.hercules_config
        assert torch.equal(logits(loaded), logits(model))


def test_hf_save_pretrained_after_merge_and_plain_folder_error(tmp_path):
    merged = trained_like(preset="memory_lora").merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    assert torch.equal(logits(load_augmented(tmp_path / "merged")), logits(merged))
    tiny_model("llama").save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="records no augmentation"):
        load_augmented(tmp_path / "plain")
