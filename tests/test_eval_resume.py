"""Evaluation resume by sample identity, and the odd files a killed or careless run leaves behind."""

from __future__ import annotations

import json
import logging

import pytest
from lock_helpers import held_by_another_process
from test_evaluator import StubLM

from hercules.backbones.tokenizer import byte_tokenizer
from hercules.data.babi import parse_babi
from hercules.data.babilong import BabilongSample
from hercules.data.loaders import BabilongData, load_babilong, write_local
from hercules.evaluation import EvalSettings, evaluate_babilong

TOK = byte_tokenizer()


def babi_folder(tmp_path, questions: int = 10):
    """A bAbI qa1 test file of ``questions`` one-question stories, and a short background book."""
    folder = tmp_path / "babi"
    folder.mkdir()
    places = ["kitchen", "garden", "office", "hallway", "bedroom"]
    lines = []
    for q in range(questions):
        lines += [f"1 Mary went to the {places[q % 5]}.", f"2 John went to the {places[(q + 1) % 5]}.",
                  f"3 Where is Mary?\t{places[q % 5]}\t1"]
    (folder / "qa1_single-supporting-fact_test.txt").write_text("\n".join(lines) + "\n")
    book = tmp_path / "book.txt"
    book.write_text(" ".join(f"The miller counted sack number {i} twice." for i in range(300)))
    return BabilongData(source="babi", babi_dir=folder, background=[book])


def ids(samples: list[BabilongSample]) -> list[str]:
    return [s.sample_id for s in samples]


def test_sample_i_does_not_depend_on_the_count(tmp_path):
    data = babi_folder(tmp_path)
    every = load_babilong(data, ["qa1"], ["0k", "1k"], 10, TOK)
    for length in ("0k", "1k"):
        for n in (4, 9, 12):
            assert ids(load_babilong(data, ["qa1"], [length], n, TOK)["qa1", length]) == ids(every["qa1", length])[:n]


def test_procedural_samples_do_not_depend_on_the_other_lengths():
    alone = load_babilong(BabilongData(), ["qa1"], ["1k"], 3, TOK)["qa1", "1k"]
    together = load_babilong(BabilongData(), ["qa1"], ["1k", "8k"], 3, TOK)["qa1", "1k"]
    assert ids(alone) == ids(together)


def settings(data: BabilongData, n: int, **kw) -> EvalSettings:
    return EvalSettings(tasks=["qa1"], lengths=["0k"], samples_per_task=n, max_new_tokens=4, progress=False,
                        data=data, **kw)


def predictions(out):
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_growing_the_count_reuses_exactly_the_same_samples(tmp_path):
    data, model, out = babi_folder(tmp_path), StubLM(TOK), tmp_path / "ev"
    evaluate_babilong(model, TOK, settings(data, 4), out)
    results = evaluate_babilong(model, TOK, settings(data, 10), out)
    assert model.generate_calls == 10  # 4 reused, 6 new
    expected = load_babilong(data, ["qa1"], ["0k"], 10, TOK)["qa1", "0k"]
    latest = {r["index"]: r for r in predictions(out)}
    assert [(latest[i]["question"], latest[i]["target"], latest[i]["sample_id"]) for i in range(10)] == [
        (s.question, s.target, s.sample_id) for s in expected]
    assert results["counts"]["qa1"]["0k"] == 10


def test_a_prediction_is_reused_only_for_the_same_input_question_and_target(tmp_path):
    samples = load_babilong(BabilongData(), ["qa1"], ["0k"], 4, TOK)["qa1", "0k"]
    path = write_local(samples, tmp_path / "data.jsonl")
    data, model, out = BabilongData(source="local", local_path=path), StubLM(TOK, answer="The office."), tmp_path / "ev"
    evaluate_babilong(model, TOK, settings(data, 4), out)
    samples[2].target = "nowhere"
    write_local(samples, path)  # the same file, with one changed sample
    results = evaluate_babilong(model, TOK, settings(data, 4), out)
    assert model.generate_calls == 5  # only the changed sample again
    assert results["accuracy"]["qa1"]["0k"] == pytest.approx(
        sum(s.target == "office" for s in samples) / 4)


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path, caplog):
    model, out = StubLM(TOK), tmp_path / "ev"
    evaluate_babilong(model, TOK, settings(BabilongData(), 4), out)
    text = (out / "predictions.jsonl").read_text()
    (out / "predictions.jsonl").write_text(text[: len(text) - 40])  # killed while writing the last record
    with caplog.at_level(logging.WARNING):
        results = evaluate_babilong(model, TOK, settings(BabilongData(), 4), out)
    assert "cut short by an interrupted write" in caplog.text
    assert model.generate_calls == 5 and results["counts"]["qa1"]["0k"] == 4
    assert len(predictions(out)) == 4  # every line of the repaired file parses
    lines = (out / "predictions.jsonl").read_text().splitlines()
    (out / "predictions.jsonl").write_text("\n".join(lines[:1] + ["{oops"] + lines[1:]) + "\n")
    with pytest.raises(ValueError, match=r"predictions.jsonl, line 2: not a JSON record"):
        evaluate_babilong(model, TOK, settings(BabilongData(), 4), out)


def test_shrinking_the_count_reports_the_new_count(tmp_path):
    model, out = StubLM(TOK), tmp_path / "ev"
    evaluate_babilong(model, TOK, settings(BabilongData(), 6), out)
    results = evaluate_babilong(model, TOK, settings(BabilongData(), 2), out)
    assert results["counts"]["qa1"]["0k"] == 2 and model.generate_calls == 6
    assert json.loads((out / "results.json").read_text())["counts"]["qa1"]["0k"] == 2


def test_an_empty_local_file_is_an_error(tmp_path):
    for name in ("empty.jsonl", "empty.json"):
        (tmp_path / name).write_text("\n" if name.endswith("l") else "[]")
        with pytest.raises(ValueError, match=f"{name} holds no BABILong records"):
            load_babilong(BabilongData(source="local", local_path=tmp_path / name), ["qa1"], ["0k"], 2)
    (tmp_path / "other.jsonl").write_text(json.dumps({"task": "qa2", "input": "c", "question": "q", "target": "t"}))
    with pytest.raises(ValueError, match="no records of task qa1 at length 0k"):
        load_babilong(BabilongData(source="local", local_path=tmp_path / "other.jsonl"), ["qa1"], ["0k"], 2)


def test_malformed_local_records_name_file_line_and_field(tmp_path):
    good = json.dumps({"input": "c", "question": "q?", "target": "t"})
    path = tmp_path / "d.jsonl"
    path.write_text(good + "\n\n" + '{"input": "c", "question": }' + "\n")
    with pytest.raises(ValueError, match=r"d.jsonl, line 3, column 28: not valid JSON"):
        load_babilong(BabilongData(source="local", local_path=path), ["qa1"], ["0k"], None)
    path.write_text(good + "\n" + json.dumps({"input": "c", "target": "t"}) + "\n")
    with pytest.raises(ValueError, match=r"d.jsonl, line 2 \(qa1/0k\) lacks field\(s\) question"):
        load_babilong(BabilongData(source="local", local_path=path), ["qa1"], ["0k"], None)


def test_a_supporting_fact_id_that_names_no_fact_warns(caplog):
    lines = ["1 Mary went to the kitchen.", "2 Where is Mary?\tkitchen\t1 7"]
    with caplog.at_level(logging.WARNING, logger="hercules.data.babi"):
        sample = parse_babi(lines, task="qa1", source="qa1_test.txt")[0]
    assert sample.supporting == (0,)
    assert "qa1_test.txt, line 2: supporting fact ID(s) [7]" in caplog.text


def test_an_evaluation_folder_in_use_is_refused(tmp_path):
    from hercules.training.run_folder import RunFolderLocked

    with held_by_another_process(tmp_path) as pid, pytest.raises(RunFolderLocked, match=f"process {pid}"):
        evaluate_babilong(StubLM(TOK), TOK, settings(BabilongData(), 2), tmp_path)
    assert not (tmp_path / "predictions.jsonl").exists()
