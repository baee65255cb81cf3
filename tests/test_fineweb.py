"""FineWeb-Edu packing: documents + EOS concatenated and cut into equal blocks; offline fallback; fail-fast hub."""

import time

import datasets
import pytest
import torch

from hercules.backbones.tokenizer import byte_tokenizer
from hercules.data import hub as hub_module
from hercules.data.fineweb import FINEWEB, TextData, iter_blocks, load_text_blocks, pack_blocks
from hercules.data.hub import HubUnavailableError


@pytest.fixture(scope="module")
def tok():
    return byte_tokenizer()


def test_blocks_are_the_token_stream_cut_evenly(tok):
    texts = ["first document.", "second one, a bit longer than the first.", "third"]
    stream = []
    for t in texts:
        stream += tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    blocks = pack_blocks(texts, tok, block_size=16)
    assert all(len(b) == 16 for b in blocks)
    assert len(blocks) == len(stream) // 16
    assert sum(blocks, []) == stream[: 16 * len(blocks)]
    assert pack_blocks(texts, tok, block_size=16, max_blocks=2) == blocks[:2]


def test_iter_blocks_is_lazy(tok):
    def endless():
        while True:
            yield "abc " * 10

    it = iter_blocks(endless(), tok, block_size=32)
    assert [len(next(it)) for _ in range(3)] == [32, 32, 32]


def test_local_files_fallback_and_skip(tmp_path, tok):
    (tmp_path / "a.txt").write_text("\n\n".join(f"Paragraph {i} of the first file." for i in range(200)))
    (tmp_path / "b.txt").write_text("Some more text.\n\nAnd more.")
    data = TextData(source="files", files=[tmp_path], block_size=64, num_blocks=5)
    blocks = load_text_blocks(data, tok)
    assert blocks.shape == (5, 64) and blocks.dtype == torch.long
    assert tok.decode(blocks[0]).startswith("Paragraph 0 of the first file.")
    later = load_text_blocks(data.model_copy(update={"skip_documents": 1}), tok)
    assert tok.decode(later[0]).startswith("Paragraph 50 of")


def test_files_source_needs_files_and_enough_text(tmp_path, tok):
    with pytest.raises(ValueError, match="data.files is required"):
        load_text_blocks(TextData(source="files"), tok)
    (tmp_path / "tiny.txt").write_text("hi")
    with pytest.raises(ValueError, match="shorter than one block"):
        load_text_blocks(TextData(source="files", files=[tmp_path / "tiny.txt"], block_size=64), tok)


def test_fineweb_offline_fails_fast_with_how_to(monkeypatch, tok):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="fineweb-edu.*To run offline: use source 'files'"):
        load_text_blocks(TextData(block_size=32, num_blocks=2), tok)
    assert time.perf_counter() - start < 5


def test_fineweb_streams_sample_10bt(monkeypatch, tok):
    calls = []

    def fake_load(path, name, split, streaming):
        calls.append((path, name, split, streaming))
        return datasets.Dataset.from_list([{"text": "web text " * 20}] * 4).to_iterable_dataset()

    monkeypatch.setattr(hub_module, "require_hub", lambda *a, **k: None)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    blocks = load_text_blocks(TextData(block_size=32, num_blocks=3), tok)
    assert calls == [(FINEWEB, "sample-10BT", "train", True)]
    assert blocks.shape == (3, 32)
