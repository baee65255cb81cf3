"""A deterministic, resumable order of micro-batches shared by all processes, and padding collation.

The training data are read as one endless stream of micro-batches: epoch ``e`` is a permutation of the dataset
drawn from a generator seeded with ``seed + e`` (never the global RNG), cut into micro-batches of ``batch_size``
(the incomplete last one dropped). Micro-batch ``g`` of the stream is fully determined by ``g``, so a run resumes
by position alone, and ``W`` processes split the stream by taking ``g = step*A*W + i*W + rank``: one process with
accumulation ``2A`` sees exactly the micro-batches that two processes with accumulation ``A`` see together.

Examples:
    >>> stream = MicroBatchStream(num_items=10, batch_size=3, seed=0)
    >>> stream.batches_per_epoch
    3
    >>> stream.indices(0) == stream.indices(0)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


class MicroBatchStream:
    """Index lists of micro-batch ``g`` of an endless, epoch-by-epoch shuffled stream."""

    def __init__(self, num_items: int, batch_size: int, seed: int, shuffle: bool = True) -> None:
        if num_items < batch_size:
            raise ValueError(
                f"training data has {num_items} sequences, fewer than training.batch_size={batch_size}; "
                f"add data or lower the batch size"
            )
        self.num_items, self.batch_size, self.seed, self.shuffle = num_items, batch_size, seed, shuffle
        self.batches_per_epoch = num_items // batch_size
        self._epoch, self._order = -1, torch.arange(num_items)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            if self.shuffle:
                gen = torch.Generator().manual_seed(self.seed + epoch)
                self._order = torch.randperm(self.num_items, generator=gen)
            self._epoch = epoch
        return self._order

    def epoch_of(self, g: int) -> int:
        return g // self.batches_per_epoch

    def indices(self, g: int) -> list[int]:
        """Dataset indices of micro-batch ``g`` (0-based over the whole run)."""
        epoch, pos = divmod(g, self.batches_per_epoch)
        order = self._permutation(epoch)
        return order[pos * self.batch_size : (pos + 1) * self.batch_size].tolist()


class LayoutBatchStream:
    """:class:`MicroBatchStream` for segmented items: every micro-batch holds items of one segment layout.

    Epoch ``e`` (generator seeded with ``seed + e``) shuffles each layout's items, cuts them into full micro-batches
    (a layout's incomplete last one is dropped) and shuffles the micro-batches of all layouts together, so layouts
    mix over the epoch while each micro-batch stays collatable. ``layouts[i]`` is item ``i``'s layout key.
    """

    def __init__(self, layouts: Sequence[Any], batch_size: int, seed: int) -> None:
        groups: dict[Any, list[int]] = {}
        for i, key in enumerate(layouts):
            groups.setdefault(key, []).append(i)
        self.groups = [torch.tensor(members) for members in groups.values()]
        self.batch_size, self.seed = batch_size, seed
        self.batches_per_epoch = sum(len(g) // batch_size for g in self.groups)
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"no segment layout has training.batch_size={batch_size} items; lower the batch size or add data"
            )
        self._epoch, self._batches = -1, []

    def indices(self, g: int) -> list[int]:
        epoch, pos = divmod(g, self.batches_per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed + epoch)
            batches = []
            for members in self.groups:
                order = members[torch.randperm(len(members), generator=gen)]
                full = len(order) // self.batch_size * self.batch_size
                batches += list(order[:full].split(self.batch_size))
            self._batches = [batches[i].tolist() for i in torch.randperm(len(batches), generator=gen)]
            self._epoch = epoch
        return self._batches[pos]


def layout_key(item: Mapping[str, Any]) -> tuple[int, ...]:
    """What items must share to go in one micro-batch: every segment length but the last."""
    return tuple(item["segment_lengths"][:-1])


def _as_ids(value: Any) -> torch.Tensor:
    return value.detach().to(torch.long).flatten() if isinstance(value, torch.Tensor) else torch.tensor(value)


def collate(items: Sequence[Mapping[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad items to a batch: ``input_ids``, ``attention_mask``, ``labels`` each ``[B, T]``.

    Each item needs ``input_ids``; ``labels`` default to the input ids (language modelling) and may use -100 to
    mask positions such as a prompt; padded positions get label -100 and attention mask 0.
    """
    ids = [_as_ids(it["input_ids"]) for it in items]
    labels = [
        _as_ids(it["labels"]) if it.get("labels") is not None else i for it, i in zip(items, ids, strict=True)
    ]
    width = max(len(i) for i in ids)
    batch_ids = torch.full((len(ids), width), pad_token_id, dtype=torch.long)
    batch_labels = torch.full((len(ids), width), -100, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, (i, lab) in enumerate(zip(ids, labels, strict=True)):
        if len(lab) != len(i):
            raise ValueError(f"item {row}: labels have {len(lab)} tokens but input_ids have {len(i)}")
        batch_ids[row, : len(i)] = i
        batch_labels[row, : len(i)] = lab
        mask[row, : len(i)] = 1
    return {"input_ids": batch_ids, "attention_mask": mask, "labels": batch_labels}


def count_target_tokens(labels: torch.Tensor) -> int:
    """Tokens that contribute to a causal-LM loss: labels other than -100 after the one-token shift."""
    return int((labels[:, 1:] != -100).sum())


def segment_lengths(items: Sequence[Mapping[str, Any]]) -> list[int]:
    """The shared segment layout of a micro-batch of segmented items (``segment_lengths`` each summing to the
    item's length): every segment but the last must have the same length in every item, the last takes the
    rest of the right-padded batch."""
    layouts = [list(it["segment_lengths"]) for it in items]
    for row, (layout, it) in enumerate(zip(layouts, items, strict=True)):
        if sum(layout) != len(it["input_ids"]) or min(layout) < 1:
            raise ValueError(f"item {row}: segment_lengths {layout} do not add up to its {len(it['input_ids'])} "
                             "tokens")
    if any(layout[:-1] != layouts[0][:-1] for layout in layouts):
        raise ValueError("a micro-batch mixes segment layouts (all segments but the last must agree); use "
                         "training.batch_size: 1 or data whose items share their layout")
    return layouts[0]
