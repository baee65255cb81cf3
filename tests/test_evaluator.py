"""Evaluator: batch-size invariance on a tiny model, report files, resumption, budget and segment handling."""

import json
import sys
import types

import pytest
import torch

from hercules.backbones.tiny import tiny_model
from hercules.backbones.tokenizer import byte_tokenizer
from hercules.data.loaders import BabilongData, load_babilong
from hercules.evaluation import EvalSettings, evaluate_babilong, generate_answers
from hercules.evaluation.segmented import MEMORY_NOTE


def _settings(**kw):
    base = dict(tasks=["qa1", "qa4"], lengths=["0k"], samples_per_task=8, max_new_tokens=8, progress=False)
    return EvalSettings(**{**base, **kw})


def _predictions(path):
    return [json.loads(line) for line in (path / "predictions.jsonl").read_text().splitlines()]


class StubLM(torch.nn.Module):
    """Answers every prompt with a fixed text; counts generate and reset_memory calls."""

    def __init__(self, tokenizer, answer="kitchen"):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = types.SimpleNamespace(
            max_position_embeddings=100_000, _name_or_path="stub", model_type="stub"
        )
        self.answer = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        self.generate_calls, self.resets = 0, 0

    @property
    def device(self):
        return torch.device("cpu")

    def reset_memory(self):
        self.resets += 1

    def generate(self, input_ids, attention_mask, **kwargs):
        self.generate_calls += 1
        tail = torch.tensor(self.answer).expand(input_ids.shape[0], -1)
        return torch.cat([input_ids, tail], dim=1)


def test_batch_size_1_and_8_give_identical_predictions(tmp_path):
    torch.manual_seed(0)
    model, tok = tiny_model("llama"), byte_tokenizer()
    settings = _settings(tasks=["qa2"], samples_per_task=8, max_new_tokens=4, few_shot=False)
    one = evaluate_babilong(model, tok, settings, tmp_path / "bs1")
    eight = evaluate_babilong(model, tok, settings.model_copy(update={"batch_size": 8}), tmp_path / "bs8")
    p1, p8 = _predictions(tmp_path / "bs1"), _predictions(tmp_path / "bs8")
    assert len(p1) == 8
    assert [r["output"] for r in p1] == [r["output"] for r in p8]
    # prompts really differ in length, so left padding was exercised
    assert len({r["input_tokens"] for r in p8}) > 4
    assert any(r["output"] for r in p1)
    assert one["accuracy"] == eight["accuracy"]
    assert tok.padding_side == "right"  # restored after left-padded generation


def test_report_files_agree_with_predictions(tmp_path):
    tok = byte_tokenizer()
    answer = load_babilong(BabilongData(), ["qa1"], ["0k"], 8, tok)["qa1", "0k"][0].target
    model = StubLM(tok, answer=f"The {answer}.")
    results = evaluate_babilong(model, tok, _settings(batch_size=3), tmp_path)
    preds = _predictions(tmp_path)
    for task in ("qa1", "qa4"):
        rows = [r for r in preds if r["task"] == task]
        expected = sum(r["target"] == answer for r in rows) / len(rows)
        assert results["accuracy"][task]["0k"] == pytest.approx(expected)
        assert results["exact_match"][task]["0k"] == pytest.approx(expected)
        assert results["counts"][task]["0k"] == 8
    assert results["accuracy"]["qa1"]["0k"] >= 1 / 8  # the stub is right at least on the first sample
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["accuracy"] == results["accuracy"]
    assert on_disk["model"]["name_or_path"] == "stub" and len(on_disk["data"]["fingerprint"]) == 16
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert model.resets == model.generate_calls == 6  # ceil(8 / 3) batches per task, memory reset before each


def test_resume_generates_only_missing_samples(tmp_path):
    tok = byte_tokenizer()
    model = StubLM(tok)
    evaluate_babilong(model, tok, _settings(samples_per_task=4), tmp_path)
    assert model.generate_calls == 8
    first = _predictions(tmp_path)
    evaluate_babilong(model, tok, _settings(samples_per_task=4), tmp_path)
    assert model.generate_calls == 8  # nothing left to do
    results = evaluate_babilong(model, tok, _settings(samples_per_task=6), tmp_path)
    assert model.generate_calls == 12  # only samples 4 and 5 of each task
    assert _predictions(tmp_path)[:8] == first
    assert results["counts"]["qa1"]["0k"] == 6
    evaluate_babilong(model, tok, _settings(samples_per_task=6, seed=1), tmp_path)  # other data: start afresh
    assert model.generate_calls == 24 and len(_predictions(tmp_path)) == 12


def test_input_over_budget_without_segments_is_a_clear_error(tmp_path):
    tok = byte_tokenizer()
    with pytest.raises(ValueError, match="exceeds the model's budget.*segment_length"):
        evaluate_babilong(StubLM(tok), tok, _settings(max_input_tokens=100), tmp_path)


def test_long_inputs_go_through_segments(tmp_path, monkeypatch):
    """Prompts over segment_length: context read in segments, then the prompt with a note instead of it."""
    tok = byte_tokenizer()
    calls = []

    def generate_segmented(model, context_ids, prompt_ids, segment_length, **kwargs):
        calls.append((tok.decode(context_ids[0]), tok.decode(prompt_ids[0]), segment_length))
        tail = torch.tensor([tok("office", add_special_tokens=False)["input_ids"]])
        return torch.cat([prompt_ids, tail], dim=1)

    fake = types.ModuleType("hercules.injection.segments")
    fake.generate_segmented = generate_segmented
    monkeypatch.setitem(sys.modules, "hercules.injection.segments", fake)
    model = StubLM(tok)
    settings = _settings(lengths=["0k", "1k"], segment_length=1000, max_input_tokens=1100, samples_per_task=2)
    results = evaluate_babilong(model, tok, settings, tmp_path)
    preds = _predictions(tmp_path)
    long = [r for r in preds if r["input_tokens"] > 1000]
    assert (
        len(calls) == len(long) == 4 and model.generate_calls == 4
    )  # the 0k prompts fit: generated as usual
    samples = load_babilong(BabilongData(), ["qa1", "qa4"], ["1k"], 2, tok)
    contexts = {s.context for cell in samples.values() for s in cell}
    for context, prompt, seg in calls:
        assert context in contexts and seg == 1000
        assert MEMORY_NOTE in prompt and context not in prompt
    assert all(r["output"] == "office" for r in long)
    assert results["counts"]["qa1"]["1k"] == 2


def test_settings_validation_names_bad_values():
    with pytest.raises(ValueError, match="qa21"):
        EvalSettings(tasks=["qa21"])
    with pytest.raises(ValueError, match="'3kb'"):
        EvalSettings(lengths=["3kb"])
    with pytest.raises(ValueError, match="extra"):
        EvalSettings(sample=3)


@pytest.mark.slow
@pytest.mark.parametrize("injection", [{"kind": "mac"}, {"kind": "mac", "write": "attention_output"}])
def test_augmented_model_answers_do_not_depend_on_batch_size(injection):
    """Left-padded batches run the memory sample by sample (or, for MAC writing the attention output, the
    evaluator groups prompts of equal length): answers equal those of one prompt at a time."""
    hercules = pytest.importorskip("hercules")
    augment_module = pytest.importorskip("hercules.injection.augment")
    torch.manual_seed(0)
    tok = byte_tokenizer()
    model = tiny_model("llama")
    ids = [
        tok("Mary went to the office. " * (1 + i % 3) + f"Where is Mary {i}?")["input_ids"] for i in range(6)
    ]
    settings = _settings(max_new_tokens=3)
    plain = generate_answers(model, tok, ids, settings)
    model = hercules.augment(model, {"injection": injection, "layers": "all"})
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # open the gates a little so that the memory changes the answers
        for _, param in augment_module.memory_parameters(model):
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    one_by_one = [generate_answers(model, tok, [x], settings)[0] for x in ids]
    assert generate_answers(model, tok, ids, settings) == one_by_one
    assert one_by_one != plain


@pytest.mark.slow
def test_segmented_reading_through_real_memory():
    """Real hercules.injection.segments: at initialisation the memory adds nothing, so the answer after reading
    the context in segments equals the answer to the prompt alone (the context is not in the prompt)."""
    hercules = pytest.importorskip("hercules")
    pytest.importorskip("hercules.injection.segments")
    from hercules.data.babilong import BabilongSample
    from hercules.data.prompts import encode_prompts
    from hercules.evaluation.evaluator import _generation_kwargs
    from hercules.evaluation.segmented import segmented_answer

    torch.manual_seed(0)
    tok = byte_tokenizer()
    model = hercules.augment(tiny_model("llama"), {"injection": {"kind": "mac"}, "layers": "all"})
    settings = _settings(segment_length=128, max_new_tokens=4, few_shot=False)
    sample = BabilongSample("qa1", "1k", 0, "Mary went to the office. " * 12, "Where is Mary?", "office")
    prompt = encode_prompts([("qa1", MEMORY_NOTE, "Where is Mary?")], tok, True, False)
    alone = generate_answers(model, tok, prompt, settings)[0]
    assert segmented_answer(model, tok, sample, settings, _generation_kwargs(tok, settings)) == alone
