"""Short causal depthwise convolution over time, with a cache for streaming.

``x`` is ``[B, T, C]``, ``weight`` ``[C, K]``; output ``t`` sees inputs ``t−K+1 … t``. The cache holds the last
``K − 1`` inputs ``[B, K−1, C]`` (zeros before the first token), so feeding a sequence in pieces with the cache
carried equals feeding it whole.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _with_cache(x: Tensor, kernel: int, cache: Tensor | None) -> Tensor:
    if cache is None:
        cache = x.new_zeros(x.shape[0], kernel - 1, x.shape[2])
    return torch.cat([cache, x], dim=1)


def causal_conv1d(x: Tensor, weight: Tensor, cache: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Fast path: K shifted multiply-adds over the whole sequence; returns ``(y [B, T, C], new_cache)``.

    For the short kernels used here this beats ``F.conv1d(groups=C)``, whose depthwise backward is slow on CPU.
    The backward is written out (:class:`_CausalConv`): autograd through K shifted slices would zero-fill a
    full-size buffer per slice.
    """
    full = _with_cache(x, weight.shape[1], cache)
    y = _CausalConv.apply(full, weight)
    return y, full[:, full.shape[1] - (weight.shape[1] - 1) :]


class _CausalConv(torch.autograd.Function):
    """``y_t = Σ_j w_j ⊙ full_{t+j}`` over the padded input ``full`` ``[B, T+K−1, C]``."""

    @staticmethod
    def forward(ctx, full: Tensor, weight: Tensor) -> Tensor:
        kernel = weight.shape[1]
        length = full.shape[1] - (kernel - 1)
        taps = weight.t().contiguous()  # [K, C]: each tap a contiguous row, which broadcasts fast
        y = full[:, :length] * taps[0]
        for j in range(1, kernel):
            y = torch.addcmul(y, full[:, j : j + length], taps[j])
        ctx.save_for_backward(full, taps)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        full, taps = ctx.saved_tensors
        kernel, length = taps.shape[0], grad.shape[1]
        grad_full = grad_taps = None
        if ctx.needs_input_grad[0]:
            grad_full = torch.zeros_like(full)
            for j in range(kernel):
                grad_full[:, j : j + length].addcmul_(grad, taps[j])
        if ctx.needs_input_grad[1]:
            grad_taps = torch.stack([(grad * full[:, j : j + length]).sum((0, 1)) for j in range(kernel)]).t()
        return grad_full, grad_taps


def causal_conv1d_naive(x: Tensor, weight: Tensor, cache: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Reference: an explicit sum over the window of each token."""
    kernel = weight.shape[1]
    full = _with_cache(x, kernel, cache)
    outs = [(full[:, t : t + kernel] * weight.T.unsqueeze(0)).sum(1) for t in range(x.shape[1])]
    y = torch.stack(outs, dim=1) if outs else x.new_zeros(x.shape)
    return y, full[:, full.shape[1] - (kernel - 1) :]
