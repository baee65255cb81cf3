"""``MemoryLayer``: the wrapper every injection strategy builds on.

It keeps the original decoder layer as ``base_layer`` and calls it unchanged; the strategy acts through two hooks
on the layer's attention module (found by the backbone adapter): ``before_attention`` may change the attention's
input (the normalised hidden state ``[B, T, D]``) and ``after_attention`` its output ``[B, T, D]``. The memory
state comes from the HF cache, from a carried :class:`~hercules.injection.state.MemoryStates`, or starts fresh
(see :mod:`hercules.injection.state`), and the new state goes back to where it came from.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from hercules.backbones.adapters import Adapter
from hercules.backbones.compat import cache_key
from hercules.injection.registry import InjectionConfig
from hercules.injection.state import MemoryStates, RowStates, cache_states
from hercules.memory import MemoryConfig, MemoryState, NeuralMemory, build_gate

CARRY_KWARG = "memory_states"


class MemoryLayer(nn.Module):
    """A decoder layer with a neural memory. Subclasses implement the hooks; see MAL, MAC, MAG.

    Args:
        base_layer: the original decoder layer (called as it is).
        layer_idx: its index among the model's decoder layers (the key of its memory state).
        dim: hidden size ``D``.
        memory: the memory's config.
        config: the strategy's config (with its gate).
        adapter: names of the layer's parts.
    """

    def __init__(
        self, base_layer: nn.Module, layer_idx: int, dim: int, memory: MemoryConfig,
        config: InjectionConfig, adapter: Adapter,
    ) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.layer_idx, self.dim, self.injection_config = layer_idx, dim, config
        self.memory = NeuralMemory(dim, memory)
        self.gate = build_gate(config.gate, dim)
        output_zero = memory.zero_init_output and config.memory_init != "attention"  # which copies the output too
        if config.require_identity and not self.gate.zero_at_init and not output_zero:
            raise ValueError(
                f"layer {layer_idx}: gate {config.gate.kind!r} does not start closed, so the augmented model would "
                f"not equal its backbone at init; set memory.zero_init_output=true, use a sigmoid/scalar gate, or (training "
                f"from scratch) set require_identity: false"
            )
        if config.memory_init == "attention":
            init_memory_from_attention(self.memory, adapter.attention_of(base_layer), layer_idx)
        self.enabled = True
        self.row_pads: list[int] | None = None  # set per call by augment's hook: left padding of each sample
        self._ctx: dict[str, Any] | None = None
        self.last: dict[str, Tensor] = {}
        self.last_stats: dict[str, Tensor] = {}
        attention = adapter.attention_of(base_layer)
        self._hooks = [
            attention.register_forward_pre_hook(self._pre_attention, with_kwargs=True),
            attention.register_forward_hook(self._post_attention, with_kwargs=True),
        ]

    # -- strategy interface -------------------------------------------------------------------------------
    def before_attention(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        """Attention input ``x`` ``[B, T, D]`` → new attention input (default: unchanged)."""
        return x

    def after_attention(self, out: Tensor, ctx: dict[str, Any]) -> Tensor:
        """Attention output ``[B, T, D]`` → new attention output (default: unchanged)."""
        return out

    def initial_state(self, batch_size: int, device: torch.device) -> MemoryState | None:
        """The state a fresh sample starts from (``None``: the memory's own initial state)."""
        return None

    # -- helpers for strategies ---------------------------------------------------------------------------
    def start_state(self, state: MemoryState | None, x: Tensor) -> MemoryState:
        """``state``, or for a fresh sample the strategy's :meth:`initial_state` or else the memory's own."""
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        return state if state is not None else self.memory.init_state(x.shape[0], x.device)

    @property
    def runs_rows(self) -> bool:
        """Whether this layer can run a left-padded batch sample by sample (strategies that write through
        :meth:`read_write`)."""
        return True

    def read_write(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        """Run the memory on ``x`` ``[B, T, D]`` with the layer's state; records the new state in ``ctx``."""
        if self.row_pads is not None or isinstance(ctx["state"], RowStates):
            return self._read_write_rows(x, ctx)
        state = ctx["state"] if ctx["state"] is not None else self.initial_state(x.shape[0], x.device)
        y, ctx["new_state"] = self.memory(x, state)  # None: the memory's own fresh state (graphs may apply)
        return y

    def _read_write_rows(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        """:meth:`read_write` sample by sample, each without its left padding (memory output 0 there), so that
        every sample's memory is what it would be alone; the states go back as :class:`RowStates`."""
        batch, length = x.shape[:2]
        pads = self.row_pads or [0] * batch
        state = ctx["state"]
        outputs, states = [], RowStates()
        fresh, made = None, False  # the strategy's initial state for one sample, made once
        for row in range(batch):
            if isinstance(state, RowStates):
                row_state = state[row]
            elif state is not None:
                row_state = state.index_select(torch.tensor([row], device=x.device))
            else:
                row_state = None
            if row_state is None:
                if not made:
                    fresh, made = self.initial_state(1, x.device), True
                row_state = fresh
            pad = min(pads[row], length)
            if pad == length:  # nothing but padding in this call
                outputs.append(torch.zeros_like(x[row : row + 1]))
                states.append(row_state)
                continue
            y, new = self.memory(x[row : row + 1, pad:], row_state)
            outputs.append(nn.functional.pad(y, (0, 0, pad, 0)))
            states.append(new)
        ctx["new_state"] = states
        return torch.cat(outputs)

    def mix(self, base: Tensor, memory_out: Tensor, hidden: Tensor) -> Tensor:
        """``gate(base, memory_out, hidden)``, keeping detached references for :mod:`diagnostics`."""
        self.last = {"base": base.detach(), "memory_out": memory_out.detach(), "hidden": hidden.detach()}
        return self.gate(base, memory_out, hidden)

    # -- plumbing -----------------------------------------------------------------------------------------
    def forward(self, hidden_states: Tensor, *args: Any, **kwargs: Any) -> Any:
        carried: MemoryStates | None = kwargs.pop(CARRY_KWARG, None)
        if not self.enabled:
            return self.base_layer(hidden_states, *args, **kwargs)
        if args:  # e.g. GPT-2 passes its cache positionally: name every argument, so the cache is found below
            args, kwargs = (), self._by_keyword(hidden_states, args, kwargs)
        checkpointing = (
            getattr(self.base_layer, "gradient_checkpointing", False) and self.training and torch.is_grad_enabled()
        )
        key = cache_key(kwargs, self.base_layer)
        if checkpointing:  # as HF's checkpointed layers do: a replayed layer must not write the KV cache twice
            kwargs.update({key: None} if key in kwargs else {})
            kwargs.update({"use_cache": False} if "use_cache" in kwargs else {})
        on_cache = cache_states(kwargs.get(key), create=True)
        state = None
        if on_cache is not None and self.layer_idx in on_cache:
            state = on_cache[self.layer_idx]
        elif carried is not None:
            state = carried.get(self.layer_idx)
        if checkpointing:
            # The state is an explicit argument of the replayed function, so the replay in the backward pass reads
            # the same state even if a carried container has moved on to later segments since.
            out, new_state = checkpoint(self._run, hidden_states, state, *args, use_reentrant=False, **kwargs)
        else:
            out, new_state = self._run(hidden_states, state, *args, **kwargs)
        if new_state is not None:
            self.last_stats = new_state.stats
            for target in (on_cache, carried):
                if target is not None:
                    target[self.layer_idx] = new_state
        return out

    def _by_keyword(self, hidden_states: Tensor, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The base layer's positional arguments after ``hidden_states`` as keywords (by its signature)."""
        signature = getattr(self, "_base_signature", None)
        if signature is None:
            signature = self._base_signature = inspect.signature(self.base_layer.forward)
        try:
            bound = signature.bind(hidden_states, *args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{type(self.base_layer).__name__} was called with arguments its signature does not "
                            f"take ({err})") from None
        named = dict(bound.arguments)
        named.pop(next(iter(signature.parameters)))  # hidden_states stays positional
        for name, param in signature.parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                named.update(named.pop(name, {}))
            elif param.kind is inspect.Parameter.VAR_POSITIONAL and named.get(name):
                raise TypeError(f"{type(self.base_layer).__name__} takes *{name}; its arguments cannot be named")
        return named

    def _run(self, hidden_states: Tensor, state: MemoryState | None, *args: Any, **kwargs: Any) -> tuple:
        """Call the base layer with the hooks active; returns its output and the new memory state."""
        ctx: dict[str, Any] = {"state": state}
        flag = getattr(self.base_layer, "gradient_checkpointing", False)
        self._ctx = ctx
        try:
            self.base_layer.gradient_checkpointing = False  # this wrapper is the checkpointed unit
            out = self.base_layer(hidden_states, *args, **kwargs)
        finally:
            self._ctx = None
            self.base_layer.gradient_checkpointing = flag
        return out, ctx.get("new_state")

    def _pre_attention(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        kwargs.pop(CARRY_KWARG, None)
        if self._ctx is None:
            return args, kwargs
        if "hidden_states" in kwargs:
            kwargs["hidden_states"] = self.before_attention(kwargs["hidden_states"], self._ctx)
        else:
            args = (self.before_attention(args[0], self._ctx), *args[1:])
        return args, kwargs

    def _post_attention(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        if self._ctx is None:
            return None
        if isinstance(output, tuple):
            return (self.after_attention(output[0], self._ctx), *output[1:])
        return self.after_attention(output, self._ctx)

    def unload_and_optionally_merge_module(self, merge: bool = True, **kwargs: Any) -> MemoryLayer:
        """peft's ``merge_and_unload`` unwraps every module that has a ``base_layer``; a memory layer stays."""
        return self

    def remove_hooks(self) -> None:
        """Detach from the base layer's attention (used when unwrapping)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def extra_repr(self) -> str:
        return f"layer_idx={self.layer_idx}, kind={self.injection_config.kind!r}, enabled={self.enabled}"


def init_memory_from_attention(memory: NeuralMemory, attention: nn.Module, layer_idx: int) -> None:
    """Copy ``attention``'s query, key, value and output projections into ``memory`` (``injection.memory_init:
    attention``): memory head ``h`` gets query head ``h`` and the key/value head of its group, as grouped-query
    attention pairs them; biases and per-head norms of the attention (Qwen2, Gemma-3) are not copied."""
    projections = [getattr(attention, n, None) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
    head_dim = getattr(attention, "head_dim", None)
    if any(not isinstance(p, nn.Linear) for p in projections) or head_dim is None:
        raise ValueError(f"layer {layer_idx}: injection.memory_init 'attention' needs an attention module with "
                         f"q_proj, k_proj, v_proj, o_proj and head_dim; {type(attention).__name__} lacks them; "
                         f"use memory_init: random")
    q, k, v, o = projections
    heads, kv_heads = q.out_features // head_dim, k.out_features // head_dim
    if (memory.heads, memory.dim_head) != (heads, head_dim):
        raise ValueError(f"layer {layer_idx}: injection.memory_init 'attention' needs memory.heads={heads} and "
                         f"memory.dim_head={head_dim} (the attention's), not {memory.heads} and {memory.dim_head}")
    if memory.conv_weight is not None and memory.config.conv_init != "identity":
        raise ValueError(f"layer {layer_idx}: injection.memory_init 'attention' needs memory.conv_init: identity "
                         f"(a random convolution would mix the copied projections across tokens)")

    def grouped(weight: Tensor) -> Tensor:  # [kv_heads·d, D] → [heads·d, D], each key/value head per query head
        return weight.unflatten(0, (kv_heads, head_dim)).repeat_interleave(heads // kv_heads, 0).flatten(0, 1)

    with torch.no_grad():
        memory.to_qkv.weight.copy_(torch.cat([q.weight, grouped(k.weight), grouped(v.weight)]))
        memory.out_proj.weight.copy_(o.weight)
