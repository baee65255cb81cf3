"""Explicit per-sample state: streaming in any pieces, batch isolation, causality, detach/move/save/load."""

from __future__ import annotations

import pytest
import torch
from memory_helpers import memory_pair, rel_err

from hercules.memory import MemoryConfig, NeuralMemory, load_state, save_state


def _stream(memory, x, cuts):
    state, outs, prev = None, [], 0
    for cut in [*cuts, x.shape[1]]:
        y, state = memory(x[:, prev:cut], state)
        outs.append(y)
        prev = cut
    return torch.cat(outs, dim=1), state


def _assert_states_close(a, b, tol=1e-5):
    for group in ("weights", "momentum", "pending"):
        for name, t in getattr(b, group).items():
            assert getattr(a, group)[name].shape == t.shape
            if t.numel():
                assert rel_err(getattr(a, group)[name], t) <= tol, (group, name)
    assert (a.conv is None) == (b.conv is None)
    if b.conv is not None:
        assert rel_err(a.conv, b.conv) <= tol


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_streaming_equals_whole_for_random_splits(chunk):
    memory, _ = memory_pair(heads=2, chunk_size=chunk)
    x = torch.randn(2, 29, 16)
    y_whole, s_whole = memory(x)
    gen = torch.Generator().manual_seed(chunk)
    for _ in range(5):
        cuts = sorted(torch.randperm(28, generator=gen)[: int(torch.randint(1, 8, (), generator=gen))] + 1)
        y, s = _stream(memory, x, [int(c) for c in cuts])
        assert rel_err(y, y_whole) <= 1e-5
        _assert_states_close(s, s_whole)


def test_streaming_one_token_at_a_time():
    memory, _ = memory_pair(heads=2, chunk_size=4)
    x = torch.randn(2, 13, 16)
    y_whole, s_whole = memory(x)
    y, s = _stream(memory, x, list(range(1, 13)))
    assert rel_err(y, y_whole) <= 1e-5
    _assert_states_close(s, s_whole)
    assert s.pending_tokens == 13 % 4


def test_batch_isolation_bit_for_bit():
    memory, _ = memory_pair(heads=2, chunk_size=4)
    x = torch.randn(5, 21, 16)
    y_batch, s_batch = memory(x)
    for i in range(5):
        y_one, s_one = memory(x[i : i + 1])
        assert (y_one[0] - y_batch[i]).abs().max() <= 1e-6
        for name, w in s_one.weights.items():
            assert (w[0] - s_batch.weights[name][i]).abs().max() <= 1e-6


def test_outputs_do_not_depend_on_later_tokens():
    memory, _ = memory_pair(heads=2, chunk_size=4)
    x = torch.randn(1, 20, 16)
    y = memory(x)[0]
    for t in (0, 5, 11, 18):
        changed = x.clone()
        changed[:, t + 1 :] = torch.randn_like(changed[:, t + 1 :]) * 3
        assert torch.equal(memory(changed)[0][:, : t + 1], y[:, : t + 1])
        changed[:, t] += 1.0  # …while a change at t itself does reach later outputs
        assert not torch.allclose(memory(changed)[0][:, t + 1 :], y[:, t + 1 :]) or t == 19


def test_state_detach_index_select_and_round_trip(tmp_path):
    memory, _ = memory_pair(heads=2, chunk_size=4)
    x = torch.randn(3, 10, 16)
    _, state = memory(x)
    assert all(w.requires_grad for w in state.weights.values())
    detached = state.detach()
    assert not any(t.requires_grad for t in detached.tensors().values())
    save_state(detached, tmp_path / "state.safetensors")
    loaded = load_state(tmp_path / "state.safetensors")
    _assert_states_close(loaded, detached, tol=0)
    more = torch.randn(3, 6, 16)
    assert torch.equal(memory(more, loaded)[0], memory(more, detached)[0])
    picked = state.index_select(torch.tensor([2, 0]))
    assert picked.batch_size == 2
    # not bitwise: a batch of 2 and one of 3 may take different BLAS blockings (1-ulp differences)
    torch.testing.assert_close(memory(more[[2, 0]], picked)[0], memory(more, state)[0][[2, 0]], rtol=1e-6, atol=1e-7)
    assert state.to(torch.float64).weights["w0"].dtype == torch.float64


def test_state_batch_mismatch_is_a_clear_error():
    memory = NeuralMemory(8, MemoryConfig())
    _, state = memory(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="batch size 2"):
        memory(torch.randn(3, 3, 8), state)


def test_truncated_backprop_stops_at_detached_state():
    memory, _ = memory_pair(heads=1, chunk_size=2)
    x = torch.randn(1, 8, 16, requires_grad=True)
    _, state = memory(x[:, :4])
    y, _ = memory(x[:, 4:], state.detach())
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(grad[:, :4], torch.zeros_like(grad[:, :4]))
    assert grad[:, 4:].abs().sum() > 0


def test_read_without_writing_sees_the_chunk_start_weights():
    memory, _ = memory_pair(heads=2, chunk_size=4, conv_kernel=0)
    x = torch.randn(2, 10, 16)
    _, state = memory(x[:, :8])  # two complete chunks written
    y, new_state = memory(x[:, 8:], state)  # an unfinished chunk: read at the weights after chunk 2
    assert torch.allclose(memory.read(x[:, 8:], state), y, atol=1e-6)
    assert all(torch.equal(new_state.weights[n], w) for n, w in state.weights.items())
