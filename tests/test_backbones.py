"""Byte tokenizer and tiny in-process models of every family."""

from __future__ import annotations

import pytest
import torch

from hercules.backbones.tiny import FAMILIES, tiny_config, tiny_model
from hercules.backbones.tokenizer import BYTE_OFFSET, VOCAB_SIZE, byte_tokenizer


def test_byte_tokenizer_round_trips_utf8(byte_tok):
    text = "héllo, wörld! 你好 \n\t<tag>"
    ids = byte_tok(text).input_ids
    assert ids == [b + BYTE_OFFSET for b in text.encode("utf-8")]
    assert byte_tok.decode(ids) == text
    assert len(byte_tok) == VOCAB_SIZE
    assert (byte_tok.pad_token_id, byte_tok.bos_token_id, byte_tok.eos_token_id) == (0, 1, 2)


def test_byte_tokenizer_pads_and_templates(byte_tok):
    batch = byte_tok(["ab", "abcd"], padding=True)
    assert batch.input_ids[0] == [BYTE_OFFSET + 97, BYTE_OFFSET + 98, 0, 0]
    assert batch.attention_mask[0] == [1, 1, 0, 0]
    left = byte_tokenizer(padding_side="left")(["ab", "abcd"], padding=True)
    assert left.input_ids[0][:2] == [0, 0]
    chat = byte_tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|user|>\nhi<eos>\n<|assistant|>\n"
    with pytest.raises(ValueError, match="padding_side"):
        byte_tokenizer(padding_side="up")


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_is_seeded_and_matches_tokenizer(family, byte_tok):
    model = tiny_model(family)
    ids = byte_tok("tiny models of every family", return_tensors="pt").input_ids
    state = torch.random.get_rng_state()
    again = tiny_model(family)
    assert torch.equal(state, torch.random.get_rng_state()), "tiny_model must not consume the global RNG"
    other = tiny_model(family, seed=1)
    with torch.no_grad():
        logits = model(ids).logits
        assert logits.shape == (1, ids.shape[1], VOCAB_SIZE)
        assert torch.equal(logits, again(ids).logits)
        assert not torch.allclose(logits, other(ids).logits)
    assert model.config.hidden_size == 64 and next(model.parameters()).dtype == torch.float32


def test_tiny_overrides_and_gemma_layer_types():
    assert len(tiny_model("llama", num_hidden_layers=3).model.layers) == 3
    assert tiny_config("gemma3", num_hidden_layers=4).layer_types == [
        "sliding_attention", "full_attention", "sliding_attention", "full_attention"
    ]
    with pytest.raises(ValueError, match="valid choices"):
        tiny_config("gpt2")
