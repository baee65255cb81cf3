"""An offline byte-level tokenizer: every UTF-8 byte is one token, plus ``<pad>``, ``<bos>`` and ``<eos>``.

Tests, tiny models and examples need a real ``PreTrainedTokenizerFast`` (padding, batching, chat templates,
``generate``) without downloading anything; this one is built in-process with the ``tokenizers`` library.
Ids 0, 1, 2 are ``<pad>``, ``<bos>``, ``<eos>``; byte ``b`` is id ``b + 3``; the vocabulary has 259 entries.

Examples:
    >>> from hercules.backbones.tokenizer import byte_tokenizer
    >>> tok = byte_tokenizer()
    >>> tok.decode(tok("hi").input_ids)
    'hi'
"""

from __future__ import annotations

from functools import lru_cache

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")
BYTE_OFFSET = len(SPECIAL_TOKENS)
VOCAB_SIZE = BYTE_OFFSET + 256

# Role-tagged turns, each closed by <eos>; generation prompts open an assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (what the ByteLevel pre-tokenizer emits)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def _build_backend() -> Tokenizer:
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for byte, char in _byte_to_unicode().items():
        vocab[char] = BYTE_OFFSET + byte
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return backend


def byte_tokenizer(padding_side: str = "right") -> PreTrainedTokenizerFast:
    """A fresh byte-level ``PreTrainedTokenizerFast`` (259 tokens, pad/bos/eos, a simple chat template).

    Args:
        padding_side: ``"right"`` for training batches, ``"left"`` for batched generation.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_build_backend(),
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        padding_side=padding_side,
        model_max_length=1 << 20,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok
