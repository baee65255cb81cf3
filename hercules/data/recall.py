"""Multi-query associative recall (MQAR, Arora et al. 2023, "Zoology") spread over segments.

A sample puts ``N`` key→value pairs at the start, then ``G`` segments of filler, then queries: keys of those
pairs, each followed by its value, which is the target. With segments of ``S`` tokens and attention limited to
one segment, the queries can be answered only by a memory that carried the pairs across the ``G`` filler
segments; a model without memory is at chance (``1 / num_values``), and full attention over the whole input is
the upper bound.

Layout (token ids; keys, values and filler come from disjoint ranges after the ``first_id`` reserved ids)::

    [k1 v1 k2 v2 … kN vN f f …]   pairs, filler up to a multiple of S (⌈2N / S⌉ segments)
    [f f … f] × G                  filler segments
    [ka va kb vb …]                the final segment: Q queries, labels on the values only

Examples:
    >>> item = recall_items(1, pairs=4, gaps=2, segment_length=16, vocab_size=259, seed=0)[0]
    >>> item["segment_lengths"], len(item["input_ids"])
    ([16, 16, 16, 8], 56)
    >>> sum(label != -100 for label in item["labels"])
    4
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class RecallVocab:
    """Which token ids are keys, values and filler: consecutive ranges from ``first_id``."""

    vocab_size: int
    num_keys: int = 96
    num_values: int = 96
    first_id: int = 3

    def __post_init__(self) -> None:
        filler = self.vocab_size - self.first_id - self.num_keys - self.num_values
        if filler < 1:
            raise ValueError(
                f"recall vocabulary: {self.num_keys} keys + {self.num_values} values + {self.first_id} reserved ids "
                f"leave no filler ids in a vocabulary of {self.vocab_size}; lower data.num_keys or data.num_values"
            )

    @property
    def filler(self) -> tuple[int, int]:
        start = self.first_id + self.num_keys + self.num_values
        return start, self.vocab_size

    @property
    def chance(self) -> float:
        """Accuracy of guessing a value uniformly."""
        return 1 / self.num_values


def recall_item(gen: torch.Generator, vocab: RecallVocab, pairs: int, gaps: int, segment_length: int,
                queries: int | None = None) -> dict[str, list[int] | int]:
    """One sample (see the module docstring): ``input_ids``, ``labels``, ``segment_lengths``, ``pairs``, ``gaps``."""
    if pairs > vocab.num_keys:
        raise ValueError(f"recall: {pairs} pairs need as many distinct keys; num_keys is {vocab.num_keys}")
    queries = min(pairs, segment_length // 2) if queries is None else queries
    if not 1 <= queries <= min(pairs, segment_length // 2):
        raise ValueError(f"recall: {queries} queries do not fit {pairs} pairs and segments of {segment_length}")
    keys = torch.randperm(vocab.num_keys, generator=gen)[:pairs] + vocab.first_id
    values = torch.randint(vocab.num_values, (pairs,), generator=gen) + vocab.first_id + vocab.num_keys
    context = torch.stack([keys, values], 1).flatten()
    head_segments = -(-len(context) // segment_length)
    lo, hi = vocab.filler
    filler = torch.randint(lo, hi, (head_segments * segment_length - len(context) + gaps * segment_length,),
                           generator=gen)
    asked = torch.randperm(pairs, generator=gen)[:queries]
    tail = torch.stack([keys[asked], values[asked]], 1).flatten()
    ids = torch.cat([context, filler, tail]).tolist()
    labels = [IGNORE_INDEX] * (len(ids) - len(tail)) + [
        t if i % 2 else IGNORE_INDEX for i, t in enumerate(tail.tolist())
    ]
    lengths = [segment_length] * (head_segments + gaps) + [len(tail)]
    return {"input_ids": ids, "labels": labels, "segment_lengths": lengths, "pairs": pairs, "gaps": gaps}


def recall_items(count: int, pairs: int, gaps: int, segment_length: int, vocab_size: int, seed: int,
                 queries: int | None = None, **vocab: int) -> list[dict]:
    """``count`` samples of one (pairs, gaps) cell, reproducible from ``seed`` (and independent of ``count``:
    sample ``i`` is the same in a list of 10 or of 1000)."""
    words = RecallVocab(vocab_size, **vocab)
    items = []
    for i in range(count):
        gen = torch.Generator().manual_seed(hash((seed, pairs, gaps, segment_length, i)) % 2**63)
        items.append(recall_item(gen, words, pairs, gaps, segment_length, queries))
    return items
