"""A memory state that does not fit the layer, or a damaged state file, is refused on entry with the mismatch named."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from hercules.memory import MemoryConfig, NeuralMemory, load_state, save_state
from hercules.memory.signature import StateMismatchError


def _layer(dim=16, **config):
    torch.manual_seed(0)
    return NeuralMemory(dim, MemoryConfig(**config))


def _state(dim=16, tokens=10, **config):
    return _layer(dim, **config)(torch.randn(2, tokens, dim))[1].detach()


@pytest.mark.parametrize(("made_by", "used_by", "named"), [
    ({"conv_kernel": 2}, {"conv_kernel": 4}, "conv_kernel is 2 in the state, 4 in the layer"),
    ({"conv_kernel": 6}, {"conv_kernel": 4}, "conv_kernel is 6 in the state, 4 in the layer"),
    ({"conv_kernel": 0}, {"conv_kernel": 4}, "conv_kernel is 0 in the state, 4 in the layer"),
    ({"chunk_size": 16}, {"chunk_size": 5}, "chunk_size is 16 in the state, 5 in the layer"),
    ({"heads": 2}, {"heads": 4}, "heads is 2 in the state, 4 in the layer"),
    ({"model": {"kind": "linear"}}, {"model": {"kind": "mlp"}}, "model is linear in the state, mlp in the layer"),
])
def test_a_state_from_another_layer_is_refused_naming_the_difference(made_by, used_by, named):
    state = _state(tokens=12, **made_by)
    with pytest.raises(StateMismatchError, match=named):
        _layer(**used_by)(torch.randn(2, 10, 16), state)


def test_a_state_of_another_width_or_dtype_is_refused():
    state = _state(dim=16, heads=2)
    with pytest.raises(StateMismatchError, match="dim_head is 8 in the state, 12 in the layer"):
        _layer(dim=24, heads=2)(torch.randn(2, 3, 24), state)
    with pytest.raises(StateMismatchError, match="dtype is torch.float64 in the state, torch.float32 in the layer"):
        _layer(heads=2)(torch.randn(2, 3, 16), state.to(torch.float64))


def test_hand_built_states_are_checked_by_shape():
    """Without a signature (a state assembled by hand), the shapes are still checked against the layer."""
    layer = _layer(chunk_size=4, conv_kernel=4)
    good = _state(tokens=6, chunk_size=4, conv_kernel=4)
    assert good.pending_tokens == 2
    anonymous = replace(good, signature=None)
    x = torch.randn(2, 5, 16)
    assert torch.equal(layer(x, anonymous)[0], layer(x, good)[0])
    short_k = replace(anonymous, pending=anonymous.pending | {"k": anonymous.pending["k"][:, :1]})
    with pytest.raises(StateMismatchError, match=r"pending.k has shape \[2, 1, 1, 16\], expected \[2, 2, 1, 16\]"):
        layer(x, short_k)
    with pytest.raises(StateMismatchError, match="the state has no convolution cache"):
        layer(x, replace(anonymous, conv=None))
    transposed = replace(anonymous, weights={n: w.transpose(-1, -2) for n, w in anonymous.weights.items()})
    with pytest.raises(StateMismatchError, match=r"weights.w0 has shape"):
        layer(x, transposed)
    too_many = _state(tokens=12, chunk_size=16, conv_kernel=4)
    with pytest.raises(StateMismatchError, match="12 pending tokens, but a chunk of 4 holds at most 3"):
        layer(x, replace(too_many, signature=None))


def test_edited_states_that_keep_their_signature_are_checked_too():
    layer = _layer(chunk_size=4, conv_kernel=4)
    good = _state(tokens=6, chunk_size=4, conv_kernel=4)
    x = torch.randn(2, 5, 16)
    for edit, named in [
        ({"pending": good.pending | {"k": good.pending["k"][:, :1]}}, "pending.k has shape"),
        ({"pending": good.pending | {"lr": good.pending["lr"][:, :, :0]}}, "pending.lr has shape"),
        ({"conv": None}, "no convolution cache"),
        ({"conv": good.conv[:, :1]}, "conv has shape"),
        ({"weights": {}}, "weights has"),
    ]:
        with pytest.raises(StateMismatchError, match=named):
            layer(x, replace(good, **edit))


def test_read_checks_the_state_too():
    with pytest.raises(StateMismatchError, match="heads"):
        _layer(heads=4).read(torch.randn(2, 3, 16), _state(heads=2))


def test_a_state_carries_its_signature_through_save_and_load(tmp_path):
    layer = _layer(chunk_size=4)
    _, state = layer(torch.randn(2, 7, 16))
    save_state(state, tmp_path / "s.safetensors")
    loaded = load_state(tmp_path / "s.safetensors")
    assert loaded.signature == layer.signature()
    assert loaded.index_select(torch.tensor([1])).signature == layer.signature()
    assert loaded.to(torch.float64).signature.dtype == "torch.float64"


def _write(path, tensors, metadata):
    save_file({k: t.contiguous() for k, t in tensors.items()}, str(path), metadata=metadata)


@pytest.fixture
def saved(tmp_path):
    layer = _layer(chunk_size=4)
    _, state = layer(torch.randn(2, 7, 16))
    path = tmp_path / "s.safetensors"
    save_state(state.detach(), path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return path, {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata()  # noqa: SIM118


@pytest.mark.parametrize(("edit", "named"), [
    (lambda t, m: (t | {"weights.w0": t["weights.w0"].transpose(-1, -2).contiguous()}, m), "weights.w0 has shape"),
    (lambda t, m: ({k: v for k, v in t.items() if k != "pending.q"}, m), "pending has"),
    (lambda t, m: (t | {"extra.thing": torch.zeros(1)}, m), "unknown state tensor 'extra.thing'"),
    (lambda t, m: (t | {"bogus": torch.zeros(1)}, m), "unknown state tensor 'bogus'"),
    (lambda t, m: (t, m | {"format": "something/9"}), "format 'something/9'"),
    (lambda t, m: (t, {k: v for k, v in m.items() if k != "format"}), "format None"),
    (lambda t, m: (t, m | {"signature": "{not json"}), "signature record is malformed"),
    (lambda t, m: (t | {"pending.lr": t["pending.lr"][:, :1].contiguous()}, m), "pending.lr has shape"),
])
def test_load_state_validates_keys_shapes_and_format(tmp_path, saved, edit, named):
    path, tensors, metadata = saved
    tensors, metadata = edit(dict(tensors), dict(metadata))
    bad = tmp_path / "bad.safetensors"
    _write(bad, tensors, metadata)
    with pytest.raises(StateMismatchError, match=named) as info:
        load_state(bad)
    assert str(bad) in str(info.value)


def test_load_state_checks_files_without_a_signature_by_their_own_shapes(tmp_path, saved):
    path, tensors, metadata = saved
    metadata = {k: v for k, v in metadata.items() if k != "signature"}
    _write(tmp_path / "ok.safetensors", tensors, metadata)
    assert load_state(tmp_path / "ok.safetensors").signature is None
    tensors = tensors | {"momentum.w1": tensors["momentum.w1"][:, :, :3].contiguous()}
    _write(tmp_path / "bad.safetensors", tensors, metadata)
    with pytest.raises(StateMismatchError, match="momentum.w1 has shape"):
        load_state(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("keep", [0, 7, 100, -10])
def test_truncated_or_foreign_files_are_a_clear_error(tmp_path, saved, keep):
    data = saved[0].read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(StateMismatchError, match="not a readable safetensors file"):
        load_state(bad)


def test_a_call_with_no_tokens_keeps_the_stats_finite():
    layer = _layer(chunk_size=4)
    y, empty = layer(torch.randn(2, 0, 16))
    assert y.shape == (2, 0, 16)
    assert all(torch.isfinite(v).all() for v in empty.stats.values())
    _, state = layer(torch.randn(2, 6, 16))
    _, after = layer(torch.randn(2, 0, 16), state)
    assert set(after.stats) == set(state.stats)
    assert all(torch.isfinite(v).all() and torch.equal(v, state.stats[k]) for k, v in after.stats.items())
