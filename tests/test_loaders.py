"""Loaders: every source gives the same schema; hub paths fail fast offline with a how-to; local JSON(L) round-trips."""

import json
import time
from pathlib import Path

import datasets
import pytest

from hercules.backbones.tokenizer import byte_tokenizer
from hercules.data import hub as hub_module
from hercules.data.hub import HubUnavailableError, require_hub
from hercules.data.loaders import HUB_TEST, HUB_TRAIN, BabilongData, load_babilong, write_local

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "babi").is_dir(), reason="../shared/data is absent")


@pytest.fixture(scope="module")
def tok():
    return byte_tokenizer()


def test_hub_fails_fast_when_offline_flag_set(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="HF_HUB_OFFLINE.*To run offline: .*source 'babi'"):
        load_babilong(BabilongData(source="hub"), ["qa1"], ["0k"], n=1)
    assert time.perf_counter() - start < 5


def test_hub_fails_fast_when_unreachable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="unreachable.*To run offline"):
        require_hub("dataset X", "do Y", timeout=2)
    assert time.perf_counter() - start < 5


def test_babi_source_without_background_needs_pg19_and_says_so(monkeypatch, tok):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = BabilongData(source="babi", babi_dir=SHARED / "babi")
    if not (SHARED / "babi").is_dir():
        pytest.skip("../shared/data is absent")
    with pytest.raises(HubUnavailableError, match="deepmind/pg19.*background"):
        load_babilong(data, ["qa1"], ["1k"], n=1, tokenizer=tok)


def test_hub_rows_map_to_samples(monkeypatch):
    """The hub layout (config = length, split = task; input/question/target) maps onto BabilongSample."""
    calls = []

    def fake_load(path, name, split):
        calls.append((path, name, split))
        rows = [{"input": f"ctx {i}", "question": "Where is Mary?", "target": "office"} for i in range(5)]
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(hub_module, "require_hub", lambda *a, **k: None)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    test = load_babilong(BabilongData(source="hub"), ["qa1", "qa2"], ["2k"], n=3)
    train = load_babilong(BabilongData(source="hub"), ["qa1"], ["0k"], n=None, split="train")
    assert calls == [(HUB_TEST, "2k", "qa1"), (HUB_TEST, "2k", "qa2"), (HUB_TRAIN, "0k", "qa1")]
    assert [s.context for s in test["qa2", "2k"]] == ["ctx 0", "ctx 1", "ctx 2"]
    assert len(train["qa1", "0k"]) == 5 and train["qa1", "0k"][0].target == "office"


def test_local_jsonl_file_and_folder_round_trip(tmp_path, tok):
    generated = load_babilong(BabilongData(), ["qa1", "qa2"], ["0k"], n=4, tokenizer=tok)
    flat = [s for key in sorted(generated) for s in generated[key]]
    write_local(flat, tmp_path / "all.jsonl")
    write_local(generated["qa2", "0k"], tmp_path / "tree" / "0k" / "qa2.jsonl")
    from_file = load_babilong(
        BabilongData(source="local", local_path=tmp_path / "all.jsonl"), ["qa2"], ["0k"], 4
    )
    from_tree = load_babilong(BabilongData(source="local", local_path=tmp_path / "tree"), ["qa2"], ["0k"], 4)
    for loaded in (from_file, from_tree):
        got = loaded["qa2", "0k"]
        assert [(s.context, s.question, s.target, s.facts) for s in got] == [
            (s.context, s.question, s.target, s.facts) for s in generated["qa2", "0k"]
        ]


def test_local_json_dict_of_tasks_and_missing_fields(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"qa1": [{"input": "c", "question": "q?", "target": "office"}]}))
    got = load_babilong(BabilongData(source="local", local_path=path), ["qa1"], ["1k"], None)
    assert got["qa1", "1k"][0].target == "office"
    path.write_text(json.dumps([{"input": "c", "question": "q?"}]))
    with pytest.raises(ValueError, match=r"data.json, record 0 \(qa1/1k\) lacks field\(s\) target"):
        load_babilong(BabilongData(source="local", local_path=path), ["qa1"], ["1k"], None)


def test_generated_sources_need_a_tokenizer():
    with pytest.raises(ValueError, match="needs a tokenizer"):
        load_babilong(BabilongData(), ["qa1"], ["1k"], 1)


@needs_shared
def test_babi_with_books_same_stories_at_every_length_and_prefix_stable(tok):
    data = BabilongData(source="babi", babi_dir=SHARED / "babi", background=[SHARED / "books" / "pg1661.txt"])
    got = load_babilong(data, ["qa1"], ["0k", "1k"], n=4, tokenizer=tok, seed=3)
    short, long = got["qa1", "0k"], got["qa1", "1k"]
    assert [(s.question, s.target, s.facts) for s in short] == [(s.question, s.target, s.facts) for s in long]
    assert all(len(tok(s.context)["input_ids"]) <= 1024 < 2 * len(tok(s.context)["input_ids"]) for s in long)
    fewer = load_babilong(data, ["qa1"], ["0k"], n=2, tokenizer=tok, seed=3)["qa1", "0k"]
    assert [s.context for s in fewer] == [s.context for s in short[:2]]
    train = load_babilong(data, ["qa1"], ["0k"], n=4, tokenizer=tok, seed=3, split="train")["qa1", "0k"]
    assert [s.context for s in train] != [s.context for s in short]
