"""Give Hercules a model family it does not know: register an adapter for its config.model_type."""

import torch
from transformers import Phi3Config, Phi3ForCausalLM

import hercules
from hercules.backbones.adapters import ADAPTERS, Adapter, register_adapter

# A tiny Phi-3, built in-process (no download). Its model_type, "phi3", is not in the adapter table.
config = Phi3Config(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                    pad_token_id=0, bos_token_id=1, eos_token_id=2)
model = Phi3ForCausalLM(config).eval()
assert "phi3" not in ADAPTERS  # it would still work through the generic fallback, with a log message

# Say where its decoder layers are and what their parts are called (these are the defaults, spelled out).
register_adapter("phi3", Adapter(
    layers="model.layers",  # the nn.ModuleList of decoder layers, from the *ForCausalLM model
    attention="self_attn",  # inside a layer: the module whose input is the normalised hidden state
    mlp="mlp",
    input_norm="input_layernorm",
    post_attention_norm="post_attention_layernorm",
))

ids = torch.randint(3, 256, (1, 16))
with torch.no_grad():
    reference = model(ids).logits
hercules.augment(model, {"injection": {"kind": "mag"}, "layers": "all"})
with torch.no_grad():
    torch.testing.assert_close(model(ids).logits, reference, rtol=0, atol=1e-6)  # identity at init
