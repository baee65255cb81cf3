"""Backbones outside the adapter table and wrappers: positional caches (GPT-2), image-text Gemma-3 reloaded after
save_pretrained, LoRA defaults on generic-layout models, and encoders refused at augment."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel

import hercules
from hercules.backbones.compat import cache_argument
from hercules.backbones.tiny import tiny_gemma3_multimodal, tiny_model
from hercules.injection import memory_parameters
from hercules.injection.io import load_augmented
from hercules.injection.peft import apply_peft


def tiny_gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=300, n_positions=64, bos_token_id=1,
                        eos_token_id=2)
    return GPT2LMHeadModel(config).eval()


def open_gates(model: torch.nn.Module) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in memory_parameters(model):
            if name.endswith("gate.scale") or "context_proj" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def ids(batch: int = 2, length: int = 11) -> torch.Tensor:
    return torch.randint(3, 259, (batch, length), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("injection", [{"kind": "mal"}, {"kind": "mag"}, {"kind": "mac"},
                                       {"kind": "mac", "write": "attention_output"}],
                         ids=["mal", "mag", "mac", "mac-write-output"])
def test_gpt2_positional_cache_keeps_the_memory_while_decoding(injection):
    """GPT-2 passes the cache to its blocks positionally; decoding token by token must equal teacher forcing."""
    model = hercules.augment(tiny_gpt2(), {"injection": injection, "layers": "all", "memory": {"chunk_size": 4}})
    open_gates(model)
    x = ids()
    with torch.no_grad():
        full = model(x, use_cache=False).logits
        assert (full - tiny_gpt2()(x).logits).abs().max() > 1e-3, "memory must contribute"
        cache, steps = DynamicCache(config=model.config), []
        for t in range(x.shape[1]):
            steps.append(model(x[:, t : t + 1], **{cache_argument(model): cache}, use_cache=True).logits)
    assert (torch.cat(steps, 1) - full).abs().max() <= 1e-5  # a fresh memory per step is off by 5e-5 or more
    prompt = x[:1, :4]
    generated = model.generate(prompt, max_new_tokens=5, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        forced = model(generated[:, :-1], use_cache=False).logits[:, 3:].argmax(-1)
    assert torch.equal(forced, generated[:, 4:])


def test_gemma3_image_text_model_reloads_after_save_pretrained(tmp_path):
    model = tiny_gemma3_multimodal()
    hercules.augment(model, {"injection": "mac", "layers": [-1], "memory": {"chunk_size": 4}})
    open_gates(model)
    model.save_pretrained(tmp_path)
    loaded = load_augmented(tmp_path)
    x = ids(length=9)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits, rtol=0, atol=1e-6)


def _generic_llama() -> torch.nn.Module:
    model = tiny_model("llama")
    model.config.model_type = "mystery-decoder"  # not in the adapter table: the generic path
    return model


@pytest.mark.parametrize(("build", "targets"), [
    (_generic_llama, {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
    (tiny_gpt2, {"c_attn", "c_proj", "c_fc"}),
], ids=["generic-llama", "gpt2"])
def test_default_lora_preset_on_generic_layout_models(build, targets):
    model = apply_peft(hercules.augment(build(), {"injection": "mag", "layers": [0]}))
    lora = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if ".lora_A" in n}
    assert lora == targets
    assert not any("memory" in n for n, _ in model.named_parameters() if "lora_" in n)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("memory.to_qkv" in n for n in trainable)


def test_encoders_are_refused_at_augment():
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    config = ModernBertConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                              cls_token_id=1, sep_token_id=2)
    with pytest.raises(ValueError, match=r"ModernBertForMaskedLM .*not a causal \(decoder-only\) language model"):
        hercules.augment(ModernBertForMaskedLM(config), {"injection": "mal"})
