"""Tiny random decoder LMs of each supported family, built in-process from their HF configs (no downloads).

They share the byte tokenizer's vocabulary (:mod:`hercules.backbones.tokenizer`), run in fp32 and are seeded, so
tests of every family are fast and reproducible. Gemma-3's tiny config keeps both of its attention kinds (a
sliding-window layer and a global one) so that code paths specific to it are exercised.

Examples:
    >>> from hercules.backbones.tiny import tiny_model
    >>> model = tiny_model("qwen3", num_hidden_layers=3)
    >>> model.config.hidden_size, len(model.model.layers)
    (64, 3)
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    PretrainedConfig,
    Qwen2Config,
    Qwen3Config,
)

from hercules.backbones.names import TINY_FAMILIES
from hercules.backbones.tokenizer import SPECIAL_TOKENS, VOCAB_SIZE

FAMILIES = TINY_FAMILIES

_COMMON: dict[str, Any] = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=4096,
    pad_token_id=SPECIAL_TOKENS.index("<pad>"),
    bos_token_id=SPECIAL_TOKENS.index("<bos>"),
    eos_token_id=SPECIAL_TOKENS.index("<eos>"),
    tie_word_embeddings=False,
)


def tiny_config(family: str, **overrides: Any) -> PretrainedConfig:
    """The HF config of a tiny model of ``family`` (llama | qwen2 | qwen3 | gemma3); ``overrides`` win."""
    if family == "llama":
        return LlamaConfig(**{**_COMMON, **overrides})
    if family == "qwen2":
        return Qwen2Config(**{**_COMMON, **overrides})
    if family == "qwen3":
        return Qwen3Config(**{**_COMMON, **overrides})
    if family == "gemma3":
        layers = overrides.get("num_hidden_layers", _COMMON["num_hidden_layers"])
        # Alternate sliding-window and global layers, ending with a global one, as Gemma-3 does.
        layer_types = [
            "full_attention" if (layers - 1 - i) % 2 == 0 else "sliding_attention" for i in range(layers)
        ]
        gemma = dict(_COMMON, sliding_window=8, query_pre_attn_scalar=16, layer_types=layer_types)
        gemma["tie_word_embeddings"] = True
        return Gemma3TextConfig(**{**gemma, **overrides})
    raise ValueError(f"unknown tiny model family {family!r}; valid choices: {', '.join(FAMILIES)}")


def tiny_model(family: str, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """A tiny random causal LM of ``family`` in fp32 and eval mode, initialised from ``seed``.

    The global RNG is left untouched. ``overrides`` are HF config fields (``num_hidden_layers=4``, ...).
    """
    config = tiny_config(family, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


def tiny_gemma3_multimodal(seed: int = 0) -> torch.nn.Module:
    """A tiny Gemma-3 image-text model (``model_type`` ``gemma3``): the text decoder of :func:`tiny_model`
    ("gemma3") under ``model.language_model`` plus a one-layer vision tower; for the ``gemma3`` adapter."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    config = Gemma3Config(
        text_config=tiny_config("gemma3").to_dict(), vision_config=vision, mm_tokens_per_image=4,
        boi_token_index=VOCAB_SIZE - 3, eoi_token_index=VOCAB_SIZE - 2, image_token_index=VOCAB_SIZE - 1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Gemma3ForConditionalGeneration(config)
    return model.eval()
