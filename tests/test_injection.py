"""Injection strategies on tiny models of every family: identity at init, layer selection, state through cache."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import DynamicCache

import hercules
from hercules.backbones.adapters import Adapter, adapter_for, register_adapter
from hercules.backbones.compat import cache_argument, enable_activation_checkpointing
from hercules.backbones.tiny import FAMILIES, tiny_model
from hercules.injection import (
    AugmentConfig,
    MemoryLayer,
    MemoryStates,
    attach_states,
    cache_states,
    memory_layers,
    memory_parameters,
)

KINDS = ("mal", "mac", "mag")
MEMORY = {"chunk_size": 4}


def augmented(family: str, kind: str, layers="all", seed: int = 0, **injection) -> torch.nn.Module:
    torch.manual_seed(seed)
    return hercules.augment(
        tiny_model(family), {"injection": {"kind": kind, **injection}, "layers": layers, "memory": MEMORY}
    )


def open_gates(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Give the memory a real contribution (gates and MAC's context projection start at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in memory_parameters(model):
            if name.endswith("gate.scale") or "context_proj" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def ids(batch: int = 2, length: int = 11, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 259, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", KINDS)
def test_identity_at_init(family, kind):
    base, model = tiny_model(family), augmented(family, kind)
    x = ids()
    with torch.no_grad():
        assert (base(x).logits - model(x).logits).abs().max() <= 1e-6
    prompt = x[:1, :5]
    expected = base.generate(prompt, max_new_tokens=4, do_sample=False)
    assert torch.equal(model.generate(prompt, max_new_tokens=4, do_sample=False), expected)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
@pytest.mark.parametrize("kind", KINDS)
def test_teacher_forced_equals_token_by_token(family, kind):
    model = open_gates(augmented(family, kind))
    x = ids()
    with torch.no_grad():
        full = model(x, use_cache=False).logits
        assert (full - tiny_model(family)(x).logits).abs().max() > 1e-3, "memory must contribute"
        cache, steps = DynamicCache(config=model.config), []
        for t in range(x.shape[1]):
            steps.append(model(x[:, t : t + 1], **{cache_argument(model): cache}, use_cache=True).logits)
    assert (torch.cat(steps, 1) - full).abs().max() <= 1e-4
    assert set(cache_states(cache)) == {0, 1}


@pytest.mark.parametrize("kind", KINDS)
def test_fresh_memory_per_call_and_batch_isolation(kind):
    model = open_gates(augmented("qwen3", kind))
    x = ids(batch=3)
    with torch.no_grad():
        first, second = model(x).logits, model(x).logits
        alone = model(x[1:2]).logits
    assert torch.equal(first, second)
    assert (first[1:2] - alone).abs().max() <= 1e-5


def test_carried_states_match_cache_and_change_outputs():
    model = open_gates(augmented("llama", "mag"))
    x = ids(length=16)
    states = MemoryStates()
    with torch.no_grad():
        model(x[:, :8], memory_states=states, use_cache=False)
        carried = model(x[:, 8:], memory_states=states, use_cache=False).logits
        fresh = model(x[:, 8:], use_cache=False).logits
        cache = attach_states(DynamicCache(config=model.config), model_states(model, x[:, :8]))
        seeded = model(x[:, 8:], **{cache_argument(model): cache}, use_cache=True).logits
    assert (carried - fresh).abs().max() > 1e-4, "a carried memory must make a difference"
    torch.testing.assert_close(seeded, carried, rtol=0, atol=1e-6)
    assert set(states) == {0, 1} and states[0].batch_size == 2


def model_states(model, x) -> MemoryStates:
    states = MemoryStates()
    model(x, memory_states=states, use_cache=False)
    return states.detach()


def test_beam_reorder_follows_the_cache():
    model = open_gates(augmented("llama", "mac"))
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(ids(batch=2), **{cache_argument(model): cache}, use_cache=True)
    before = {i: s.weights for i, s in cache_states(cache).items()}
    copied = copy.deepcopy(cache)
    cache.reorder_cache(torch.tensor([1, 1]))
    copied.reorder_cache(torch.tensor([1, 0]))
    for i, state in cache_states(cache).items():
        for name, w in state.weights.items():
            assert torch.equal(w[0], before[i][name][1]) and torch.equal(w[1], before[i][name][1])
            assert torch.equal(cache_states(copied)[i].weights[name][0], before[i][name][1])
    out = model.generate(ids(batch=1)[:, :4], max_new_tokens=4, num_beams=2, do_sample=False)
    assert out.shape == (1, 8)


def test_layer_selection_and_overrides():
    model = hercules.augment(
        tiny_model("llama", num_hidden_layers=4),
        {"injection": "mac", "layers": [0, -1], "overrides": {-1: {"injection": {"kind": "mal", "gate": "scalar"}}}},
    )
    layers = model.model.layers
    assert [type(layer).__name__ for layer in layers] == ["MAC", "LlamaDecoderLayer", "LlamaDecoderLayer", "MAL"]
    assert layers[3].gate.config.kind == "scalar" and layers[0].gate.config.kind == "sigmoid"
    assert sorted(memory_layers(model)) == [0, 3]
    assert AugmentConfig(layers="all").resolve_layers(3) == [0, 1, 2]
    assert AugmentConfig(layers=[-1, 2, -3]).resolve_layers(3) == [0, 2]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"layers": [5]}, "out of range"),
        ({"layers": [0], "overrides": {1: {}}}, "not among the selected layers"),
        ({"injection": {"kind": "mxc"}}, "valid choices: mac, mag, mal"),
        ({"injection": {"kind": "mac", "bogus": 1}}, "bogus"),
        ({"layerz": [0]}, "layerz"),
        ({"layers": []}, "layers is empty"),
    ],
)
def test_bad_configs_name_the_field(config, message):
    with pytest.raises(ValueError, match=message):
        hercules.augment(tiny_model("llama"), config)


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_memory_init_from_attention_copies_its_projections_per_query_head(family):
    """Memory head h reads with query head h and writes with the key/value head of h's group (4 query heads, 2
    key/value heads: heads 0, 1 share group 0); the output projection is the attention's; the model still equals
    its backbone (the gate is closed)."""
    memory = {"heads": 4, "dim_head": 16, "chunk_size": 4, "qk_norm": False, "value_norm": False, "input_norm": False}
    config = {"injection": {"kind": "mag", "memory_init": "attention"}, "layers": [0], "memory": memory}
    base = tiny_model(family)
    model = hercules.augment(copy.deepcopy(base), config)
    layer = memory_layers(model)[0]
    attention = adapter_for(base).attention_of(adapter_for(base).decoder_layers(base)[0])
    x = torch.randn(1, 5, 64)
    projected, _ = layer.memory.project(x, None)
    keys = attention.k_proj(x).unflatten(-1, (2, 16))
    assert torch.allclose(projected["q"], attention.q_proj(x).unflatten(-1, (4, 16)))
    assert torch.allclose(projected["k"], keys.repeat_interleave(2, dim=2))
    assert torch.allclose(projected["v"], attention.v_proj(x).unflatten(-1, (2, 16)).repeat_interleave(2, dim=2))
    assert torch.equal(layer.memory.out_proj.weight, attention.o_proj.weight)
    with torch.no_grad():
        assert torch.equal(base(ids()).logits, model(ids()).logits)


@pytest.mark.parametrize(
    ("memory", "injection", "message"),
    [
        ({"heads": 2}, {}, "needs memory.heads=4 and memory.dim_head=16"),
        ({"heads": 4, "dim_head": 16, "conv_init": "random"}, {}, "conv_init: identity"),
        ({"heads": 4, "dim_head": 16}, {"gate": "none"}, "does not start closed"),
    ],
)
def test_memory_init_from_attention_errors_name_the_field(memory, injection, message):
    config = {"injection": {"kind": "mag", "memory_init": "attention", **injection}, "layers": [0], "memory": memory}
    with pytest.raises(ValueError, match=message):
        hercules.augment(tiny_model("llama"), config)


def test_augmenting_twice_is_an_error():
    model = augmented("llama", "mal")
    with pytest.raises(ValueError, match="already augmented"):
        hercules.augment(model, {})


def test_adapters_table_generic_fallback_and_error():
    assert adapter_for(tiny_model("gemma3")).extra_norms == ("pre_feedforward_layernorm", "post_feedforward_layernorm")
    model = tiny_model("llama")
    model.config.model_type = "mystery-decoder"
    assert adapter_for(model).layers == "model.layers"
    x = ids()
    base_logits = model(x).logits
    hercules.augment(model, {"injection": "mag"})
    torch.testing.assert_close(model(x).logits, base_logits, rtol=0, atol=1e-6)

    class Odd(torch.nn.Module):
        config = type("C", (), {"model_type": "odd"})()

    with pytest.raises(ValueError, match="register_adapter\\('odd'"):
        adapter_for(Odd())
    with pytest.raises(KeyError, match="already registered"):
        register_adapter("llama", Adapter())


def test_gradients_reach_memory_and_checkpointing_matches():
    x = ids(length=12)
    grads = []
    for checkpointing in (False, True):
        model = open_gates(augmented("llama", "mac", layers=[0]))
        model.train()
        if checkpointing:
            enable_activation_checkpointing(model)
        states = MemoryStates()  # two segments with the memory carried, one backward through both
        loss = sum(model(x[:, s : s + 6], labels=x[:, s : s + 6], memory_states=states).loss for s in (0, 6))
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in memory_parameters(model) if p.grad is not None})
    assert any(n.endswith("memory.to_qkv.weight") and g.abs().sum() > 0 for n, g in grads[0].items())
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6)


def test_closed_gate_still_receives_gradient():
    model = augmented("qwen2", "mag", layers=[0]).train()
    x = ids()
    model(x, labels=x).loss.backward()
    assert model.model.layers[0].gate.scale.grad.abs().sum() > 0


def test_mac_persistent_tokens_are_learned_and_stream_exactly():
    base, model = tiny_model("llama"), augmented("llama", "mac", persistent_tokens=3)
    x = ids()
    with torch.no_grad():
        assert (base(x).logits - model(x).logits).abs().max() <= 1e-6
    open_gates(model)
    with torch.no_grad():
        full = model(x, use_cache=False).logits
        cache, steps = DynamicCache(config=model.config), []
        for t in range(x.shape[1]):
            steps.append(model(x[:, t : t + 1], **{cache_argument(model): cache}, use_cache=True).logits)
    assert (torch.cat(steps, 1) - full).abs().max() <= 1e-4
    model.train()
    model(x, labels=x, use_cache=False).loss.backward()
    assert model.model.layers[0].persistent.grad.abs().sum() > 0


def test_multimodal_gemma3_text_decoder_is_augmented():
    from hercules.backbones.tiny import tiny_gemma3_multimodal

    base, model = tiny_gemma3_multimodal(), tiny_gemma3_multimodal()
    hercules.augment(model, {"injection": "mac", "layers": [-1]})
    assert type(model.model.language_model.layers[-1]).__name__ == "MAC"
    x = ids(length=9)
    with torch.no_grad():
        assert (base(x).logits - model(x).logits).abs().max() <= 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    ("injection", "autocast"),
    [({"kind": "mal"}, False), ({"kind": "mac", "persistent_tokens": 2}, False), ({"kind": "mag"}, False),
     ({"kind": "mal"}, True)],
    ids=["mal", "mac-persistent", "mag", "mal-bf16-autocast"],
)  # fmt: skip
def test_cuda_graph_training_equals_eager(injection, autocast, monkeypatch):
    """memory.cuda_graphs: two SGD steps of an augmented model give the eager losses and gradients, and graphs
    were really replayed (the second step reads the parameters the first step updated in place)."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    runs = {}
    for graphs in (False, True):
        torch.manual_seed(0)
        memory = {**MEMORY, "cuda_graphs": graphs}
        model = hercules.augment(
            tiny_model("llama"), {"injection": injection, "layers": "all", "memory": memory}
        )
        model = open_gates(model).cuda().train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        losses, grads = [], []
        for step in range(2):
            x = ids(length=13, seed=step).cuda()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                loss = model(x, labels=x).loss
            loss.backward()
            losses.append(loss.item())
            grads.append(
                {n: p.grad.detach().clone() for n, p in memory_parameters(model) if p.grad is not None}
            )
            optimizer.step()
            optimizer.zero_grad()
        runs[graphs] = losses, grads
        assert bool(graphs) == all(layer.memory._graphs for layer in memory_layers(model).values())
    (eager_losses, eager_grads), (graph_losses, graph_grads) = runs[False], runs[True]
    # the same kernels either way; bf16 leaves room for a different order of accumulation
    rtol, atol = (2e-2, 1e-3) if autocast else (1e-4, 1e-6)
    assert graph_losses == pytest.approx(eager_losses, rel=rtol / 10)
    for eager, graphed in zip(eager_grads, graph_grads, strict=True):
        assert eager.keys() == graphed.keys()
        for name, g in eager.items():
            torch.testing.assert_close(graphed[name], g, rtol=rtol, atol=atol, msg=name)


def left_padded(rows: list[torch.Tensor], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(r.shape[-1] for r in rows)
    ids_ = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids_[i, width - r.shape[-1] :] = r
        mask[i, width - r.shape[-1] :] = 1
    return ids_, mask


@pytest.mark.parametrize("kind", KINDS)
def test_left_padded_batch_generates_as_each_prompt_alone(kind):
    """Batched generation with left padding: every sample's scores equal those of its prompt run alone, while
    the samples' memories stand at different points of a chunk (lengths 9, 5 and 2 with chunk size 4)."""
    model = open_gates(augmented("llama", kind)).eval()
    prompts = [ids(1, length, seed=length)[0] for length in (9, 5, 2)]
    batch, mask = left_padded(prompts)
    settings = {"max_new_tokens": 6, "do_sample": False, "output_scores": True, "return_dict_in_generate": True}
    together = model.generate(batch, attention_mask=mask, pad_token_id=0, **settings)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], pad_token_id=0, **settings)
        assert torch.equal(together.sequences[row, batch.shape[1] :], alone.sequences[0, prompt.shape[0] :])
        for step_together, step_alone in zip(together.scores, alone.scores, strict=True):
            torch.testing.assert_close(step_together[row], step_alone[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["qwen3", "gemma3"])
def test_left_padded_beam_search_generates_as_each_prompt_alone(family):
    """Beams reorder the per-sample states with the KV cache (and on other families too). A large inner learning
    rate makes the memory matter enough that a wrong reordering changes the beams' scores."""
    torch.manual_seed(0)
    memory = {**MEMORY, "rule": {"kind": "titans", "max_lr": 0.5}}
    model = hercules.augment(tiny_model(family), {"injection": "mac", "layers": "all", "memory": memory})
    model = open_gates(model).eval()
    prompts = [ids(1, 7, seed=7)[0], ids(1, 3, seed=3)[0]]
    batch, mask = left_padded(prompts)
    settings = {"max_new_tokens": 6, "do_sample": False, "num_beams": 3, "num_return_sequences": 3,
                "pad_token_id": 0, "output_scores": True, "return_dict_in_generate": True}  # fmt: skip
    together = model.generate(batch, attention_mask=mask, **settings)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], **settings)
        beams = slice(3 * row, 3 * row + 3)
        assert torch.equal(together.sequences[beams, batch.shape[1] :], alone.sequences[:, prompt.shape[0] :])
        torch.testing.assert_close(together.sequences_scores[beams], alone.sequences_scores, rtol=1e-4, atol=1e-5)


def test_left_padding_would_change_the_answer_without_rows(monkeypatch):
    """The property above is not vacuous: with the padding written into the memory (rows switched off), the
    padded sample's logits miss the tolerance that the sample-by-sample run meets."""
    model = open_gates(augmented("llama", "mal")).eval()
    prompts = [ids(1, 9, seed=9)[0], ids(1, 5, seed=5)[0]]
    batch, mask = left_padded(prompts)
    with torch.no_grad():
        alone = model(prompts[1][None]).logits[0, -1]
        exact = model(batch, attention_mask=mask).logits[1, -1]
        monkeypatch.setattr(MemoryLayer, "runs_rows", property(lambda self: False))
        padded = model(batch, attention_mask=mask).logits[1, -1]
    torch.testing.assert_close(exact, alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(padded, alone, rtol=1e-4, atol=1e-5)


def test_left_padded_batch_warns_where_a_layer_cannot_run_rows(caplog):
    """MAC writing the attention output runs batched: a left-padded batch says so, once."""
    model = augmented("llama", "mac", write="attention_output").eval()
    batch, mask = left_padded([ids(1, 6, seed=6)[0], ids(1, 3, seed=3)[0]])
    with caplog.at_level("WARNING", logger="hercules.injection.augment"), torch.no_grad():
        model(batch, attention_mask=torch.ones_like(mask))
        assert not caplog.records
        for _ in range(2):
            model(batch, attention_mask=mask)
    assert len([r for r in caplog.records if "padding" in r.getMessage()]) == len(memory_layers(model))
