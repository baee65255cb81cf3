"""Language-model training text: FineWeb-Edu (streamed from the hub) or local text files, packed into blocks.

Documents are tokenised, each followed by the EOS token, concatenated, and cut into fixed-length blocks of
``block_size`` tokens (the last partial block is dropped), as is usual for causal-LM pre-training. The hub path
streams ``HuggingFaceFW/fineweb-edu`` (config ``sample-10BT``) and fails within seconds when offline; local text
files are the offline fallback.

Examples:
    >>> from hercules.backbones.tokenizer import byte_tokenizer
    >>> blocks = pack_blocks(["hello world", "more text"], byte_tokenizer(), block_size=8)
    >>> [len(b) for b in blocks]
    [8, 8]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hercules.data.hub import load_hub_dataset
from hercules.data.loaders import text_files

if TYPE_CHECKING:  # torch is imported where blocks are made: TextData validates without it
    import torch

log = logging.getLogger(__name__)

FINEWEB = "HuggingFaceFW/fineweb-edu"
_OFFLINE_HINT = (
    "use source 'files' with files=<text files or folders of .txt> (for example ../shared/data/books)"
)


class TextData(BaseModel):
    """Where language-model training text comes from and how it is packed.

    Examples:
        >>> TextData(source="files", files=["../shared/data/books"], block_size=512, num_blocks=100).source
        'files'
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    source: Literal["fineweb", "files"] = Field(
        "fineweb", description="fineweb: FineWeb-Edu streamed from the hub; files: local UTF-8 text files"
    )
    files: list[Path] | None = Field(None, description="text files or folders of .txt files (source files)")
    hub_name: str = Field(FINEWEB, description="hub dataset id (source fineweb)")
    hub_config: str = Field("sample-10BT", description="hub dataset config (source fineweb)")
    block_size: int = Field(2048, ge=2, le=1_048_576, description="tokens per packed training block")
    num_blocks: int = Field(1000, ge=1, le=1_000_000, description="number of blocks to prepare")
    skip_documents: int = Field(
        0, ge=0, description="documents to skip first (e.g. to hold out validation text)"
    )

    @model_validator(mode="after")
    def _files_given(self) -> TextData:
        if self.source == "files" and not self.files:
            raise ValueError("data.files is required for source 'files' (text files or folders of .txt files)")
        return self


def fineweb_texts(name: str = FINEWEB, config: str = "sample-10BT", skip: int = 0) -> Iterator[str]:
    """Stream document texts of FineWeb-Edu (or another hub dataset with a ``text`` field)."""
    stream = load_hub_dataset(name, _OFFLINE_HINT, name=config, split="train", streaming=True)
    if skip:
        stream = stream.skip(skip)
    for row in stream:
        yield row["text"]


def file_texts(paths: list[str | Path], skip: int = 0) -> Iterator[str]:
    """Documents of local text files: each blank-line-separated chunk of ~50 paragraphs is one document."""
    count = 0
    for path in text_files([Path(p) for p in paths]):
        paragraphs = [
            p for p in path.read_text(encoding="utf-8", errors="replace").split("\n\n") if p.strip()
        ]
        for i in range(0, len(paragraphs), 50):
            count += 1
            if count > skip:
                yield "\n\n".join(paragraphs[i : i + 50])


def iter_blocks(texts: Iterable[str], tokenizer: Any, block_size: int) -> Iterator[list[int]]:
    """Tokenise documents (each + EOS), concatenate, and yield consecutive blocks of ``block_size`` ids."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token_id; packing needs one to separate documents")
    buffer: list[int] = []
    for text in texts:
        buffer.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        buffer.append(tokenizer.eos_token_id)
        start = 0
        while len(buffer) - start >= block_size:
            yield buffer[start : start + block_size]
            start += block_size
        buffer = buffer[start:]


def pack_blocks(
    texts: Iterable[str], tokenizer: Any, block_size: int, max_blocks: int | None = None
) -> list[list[int]]:
    """The first ``max_blocks`` blocks of :func:`iter_blocks` as a list."""
    out: list[list[int]] = []
    for block in iter_blocks(texts, tokenizer, block_size):
        out.append(block)
        if max_blocks is not None and len(out) >= max_blocks:
            break
    return out


def load_text_blocks(data: TextData, tokenizer: Any) -> torch.Tensor:
    """Packed training blocks ``[num_blocks, block_size]`` (int64) from FineWeb-Edu or local files.

    Raises:
        HubUnavailableError: source ``fineweb`` with no network (the message says how to use local files).
        ValueError: source ``files`` without files, or too little text for one block.
    """
    if data.source == "fineweb":
        texts: Iterable[str] = fineweb_texts(data.hub_name, data.hub_config, data.skip_documents)
    else:
        if not data.files:
            raise ValueError(
                "data.files is required for source 'files' (text files or folders of .txt files)"
            )
        texts = file_texts(data.files, data.skip_documents)
    blocks = pack_blocks(texts, tokenizer, data.block_size, data.num_blocks)
    if not blocks:
        raise ValueError(f"the {data.source} text is shorter than one block of {data.block_size} tokens")
    if len(blocks) < data.num_blocks:
        log.warning(
            "only %d of %d blocks of %d tokens available", len(blocks), data.num_blocks, data.block_size
        )
    import torch

    return torch.tensor(blocks, dtype=torch.long)
