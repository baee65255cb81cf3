"""Shared pytest fixtures (keep this file small; fixtures of one area live in that area's test files)."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    # Triton decides between compiling and interpreting when a kernel is defined, and peft and titans-pytorch
    # import it while the tests are collected. On a machine without CUDA no Triton kernel can run compiled, so its
    # interpreter is switched on for the whole run: tests/test_triton_chunk.py runs the memory's kernels with it,
    # and nothing else launches Triton kernels there. On a CUDA machine nothing changes (the kernels compile, and
    # tests/test_triton_cuda.py runs them).
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def byte_tok():
    """The offline byte-level tokenizer (259 tokens)."""
    from hercules.backbones.tokenizer import byte_tokenizer

    return byte_tokenizer()


@pytest.fixture
def tiny_lm():
    """Factory for tiny seeded fp32 models: ``tiny_lm("llama", num_hidden_layers=3)``."""
    from hercules.backbones.tiny import tiny_model

    return tiny_model
