"""BABILong evaluation of any HF causal LM, augmented with memory or not.

Greedy decoding, batched with left padding; each sample starts with a fresh memory; inputs longer than
``segment_length`` are read segment by segment (:mod:`hercules.injection.segments`). Predictions are appended to
``predictions.jsonl`` as they are made and ``results.json`` is rewritten after every (task, length) cell, so a run
that stops can be resumed with the same call. At the end a heatmap PNG and a table are written.

Examples:
    >>> from hercules.backbones.tiny import tiny_model
    >>> from hercules.backbones.tokenizer import byte_tokenizer
    >>> settings = EvalSettings(tasks=["qa1"], lengths=["0k"], samples_per_task=2, max_new_tokens=4, progress=False)
    >>> results = evaluate_babilong(tiny_model("llama"), byte_tokenizer(), settings, "/tmp/hercules-eval-doc")
    >>> results["counts"]["qa1"]["0k"]
    2
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from hercules.data import prompts
from hercules.data.babilong import BabilongSample
from hercules.data.loaders import load_babilong
from hercules.evaluation.metrics import babilong_score, contains, exact_match
from hercules.evaluation.report import build_results, data_identity, finish_report, progress_bar
from hercules.evaluation.segmented import segmented_answer
from hercules.evaluation.settings import EvalSettings
from hercules.training.run_folder import RunLock

log = logging.getLogger(__name__)


def encode_prompts(samples: list[BabilongSample], tokenizer: Any, settings: EvalSettings) -> list[list[int]]:
    """Token ids of each sample's full prompt (chat-formatted when the tokenizer has a template)."""
    items = [(s.task, s.context, s.question) for s in samples]
    return prompts.encode_prompts(items, tokenizer, settings.use_chat_template, settings.few_shot)


@contextmanager
def _left_padding(tokenizer: Any) -> Iterator[None]:
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side = side


def _reset_memory(model: Any) -> None:
    """Start every batch with a fresh memory (models that keep one expose ``reset_memory``)."""
    reset = getattr(model, "reset_memory", None)
    if callable(reset):
        reset()


def _input_budget(model: Any, settings: EvalSettings) -> int | None:
    return settings.max_input_tokens or getattr(
        getattr(model, "config", None), "max_position_embeddings", None
    )


def _generation_kwargs(tokenizer: Any, settings: EvalSettings) -> dict[str, Any]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return dict(max_new_tokens=settings.max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad)


def answer_samples(
    model: Any, tokenizer: Any, samples: list[BabilongSample], ids: list[list[int]], settings: EvalSettings
) -> list[str]:
    """Answers for a batch: prompts longer than ``segment_length`` are read in segments, the rest batched."""
    seg = settings.segment_length
    long = {i for i, x in enumerate(ids) if seg is not None and len(x) > seg}
    answers = [""] * len(ids)
    short = [i for i in range(len(ids)) if i not in long]
    if short:
        for i, answer in zip(
            short, generate_answers(model, tokenizer, [ids[i] for i in short], settings), strict=True
        ):
            answers[i] = answer
    for i in sorted(long):
        _reset_memory(model)
        answers[i] = segmented_answer(
            model, tokenizer, samples[i], settings, _generation_kwargs(tokenizer, settings)
        )
    return answers


def _reads_padding(model: Any) -> bool:
    """Whether some memory layer of ``model`` would read left padding as text (one that cannot run a padded
    batch sample by sample: MAC writing the attention output); false for a model without memory."""
    from hercules.injection.augment import memory_layers

    return any(not layer.runs_rows for layer in memory_layers(model).values())


def segment_plan(model: Any, settings: EvalSettings) -> tuple[EvalSettings, str | None]:
    """The settings with the segment length in effect, and a note when the result is a no-memory baseline.

    ``settings.segment_length`` is the source; unset, the model's own ``AugmentConfig.segment_length`` (from
    ``augment:`` in its recipe) is used. A model without memory never sees a context read in segments: it then
    answers from the question alone, which is logged as a warning and noted in the results.
    """
    from hercules.injection.augment import memory_layers

    own = getattr(getattr(model, "hercules_config", None), "segment_length", None)
    if settings.segment_length is None and own is not None:
        settings = settings.model_copy(update={"segment_length": own})
    if settings.segment_length is None or memory_layers(model):
        return settings, None
    note = (f"no-memory baseline: the model has no memory, so inputs longer than segment_length="
            f"{settings.segment_length} tokens are answered from the question without their context")
    log.warning("%s (give a model with memory to evaluate reading in segments)", note)
    return settings, note


def _equal_length_groups(ids: list[list[int]]) -> list[list[int]]:
    """Positions of ``ids`` grouped by prompt length, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        groups.setdefault(len(x), []).append(i)
    return list(groups.values())


@torch.no_grad()
def generate_answers(model: Any, tokenizer: Any, ids: list[list[int]], settings: EvalSettings) -> list[str]:
    """Greedy answers for a batch of token-id prompts: [B] prompts → [B] decoded strings (new tokens only).

    An augmented model runs a left-padded batch's memory sample by sample without the padding, so its answers do
    not depend on the batch size; where a memory layer cannot (MAC writing the attention output), the batch is
    split into groups of equal prompt length instead.
    """
    if len(ids) > 1 and len({len(x) for x in ids}) > 1 and _reads_padding(model):
        answers: list[str] = [""] * len(ids)
        for group in _equal_length_groups(ids):
            for i, answer in zip(
                group, generate_answers(model, tokenizer, [ids[i] for i in group], settings), strict=True
            ):
                answers[i] = answer
        return answers
    gen = _generation_kwargs(tokenizer, settings)
    budget = _input_budget(model, settings)
    longest = max(len(x) for x in ids)
    _reset_memory(model)
    if budget is not None and longest + settings.max_new_tokens > budget:
        raise ValueError(
            f"input of {longest} tokens + {settings.max_new_tokens} new tokens exceeds the model's budget of "
            f"{budget}; set segment_length to read long inputs in segments, or evaluate shorter lengths"
        )
    with _left_padding(tokenizer):
        batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
    batch = {k: v.to(model.device) for k, v in batch.items()}
    out = model.generate(**batch, **gen)
    new = out[:, batch["input_ids"].shape[1] :]
    return [tokenizer.decode(t, skip_special_tokens=True).strip() for t in new]


def _read_done(path: Path) -> dict[tuple[str, str, int], dict]:
    """Earlier predictions by (task, length, index); the last record of a key wins.

    A last line cut short (the run was killed while writing it) is dropped from the file with a warning; an
    unreadable line elsewhere is an error naming the file and the line.
    """
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number < len(lines) or line.endswith("\n"):
                raise ValueError(f"{path}, line {number}: not a JSON record ({err.msg}); remove or repair "
                                 f"the line, or evaluate afresh with resume: false") from err
            log.warning("%s: dropping its last line, cut short by an interrupted write (%d bytes)",
                        path, len(line))
            path.write_text("".join(lines[: number - 1]), encoding="utf-8")
    return {(r["task"], r["length"], r["index"]): r for r in records}


def _reused(done: dict, samples: dict, cells: list[tuple[str, str]]) -> dict[tuple[str, str, int], dict]:
    """The earlier predictions that belong to the samples now asked for: same key and same sample identity."""
    reused, stale = {}, 0
    for cell in cells:
        for s in samples[cell]:
            record = done.get((s.task, s.length, s.index))
            if record is not None and record.get("sample_id") == s.sample_id:
                reused[s.task, s.length, s.index] = record
            elif record is not None:
                stale += 1
    if stale:
        log.warning("%d earlier predictions were made on other samples (their input, question or target "
                    "differ); evaluating those samples again", stale)
    return reused


def _prepare_run(out: Path, settings: EvalSettings) -> dict[tuple[str, str, int], dict]:
    """Load earlier predictions when resuming with unchanged settings; otherwise start a fresh file."""
    out.mkdir(parents=True, exist_ok=True)
    ident_path, pred_path = out / "settings.json", out / "predictions.jsonl"
    identity = settings.identity()
    if settings.resume and ident_path.exists() and pred_path.exists():
        if json.loads(ident_path.read_text()) == identity:
            return _read_done(pred_path)
        log.warning("settings differ from the run in %s; starting its predictions afresh", out)
    ident_path.write_text(json.dumps(identity, indent=2))
    pred_path.write_text("")
    return {}


def _prior_wall_time(out: Path) -> float:
    try:
        return float(json.loads((out / "results.json").read_text())["wall_time_s"])
    except (OSError, ValueError, KeyError):
        return 0.0


def _score(sample: BabilongSample, output: str, n_tokens: int) -> dict[str, Any]:
    return {
        "task": sample.task,
        "length": sample.length,
        "index": sample.index,
        "sample_id": sample.sample_id,
        "question": sample.question,
        "target": sample.target,
        "output": output,
        "input_tokens": n_tokens,
        "correct": babilong_score(output, sample.target, sample.question, sample.task),
        "exact_match": exact_match(output, sample.target),
        "contains": contains(output, sample.target),
    }


def evaluate_babilong(
    model: Any, tokenizer: Any, settings: EvalSettings, out_dir: str | Path
) -> dict[str, Any]:
    """Evaluate ``model`` on BABILong; write results.json, predictions.jsonl, heatmap.png to ``out_dir``.

    Returns the results dict (also in ``results.json``): ``accuracy[task][length]`` in [0, 1] (BABILong metric),
    ``exact_match`` and ``contains`` likewise, ``counts``, and the model, data and settings identity.
    """
    out, start = Path(out_dir), time.perf_counter()
    with RunLock(out):
        return _evaluate(model, tokenizer, settings, out, start)


def _evaluate(model: Any, tokenizer: Any, settings: EvalSettings, out: Path, start: float) -> dict[str, Any]:
    settings, note = segment_plan(model, settings)
    earlier = _prepare_run(out, settings)
    prior_s = _prior_wall_time(out) if earlier else 0.0
    samples = load_babilong(
        settings.data,
        settings.tasks,
        settings.lengths,
        settings.samples_per_task,
        tokenizer,
        seed=settings.seed,
        split="test",
    )
    model.eval()
    cells = [(t, length) for length in settings.lengths for t in settings.tasks]
    done = _reused(earlier, samples, cells)  # only these count in the results, whatever the file holds
    total = sum(len(samples[c]) for c in cells)
    with (
        progress_bar(settings.progress, total) as advance,
        (out / "predictions.jsonl").open("a") as pred_file,
    ):
        advance(sum(1 for c in cells for s in samples[c] if (s.task, s.length, s.index) in done))
        for cell in cells:
            todo = [s for s in samples[cell] if (s.task, s.length, s.index) not in done]
            for i in range(0, len(todo), settings.batch_size):
                chunk = todo[i : i + settings.batch_size]
                ids = encode_prompts(chunk, tokenizer, settings)
                for sample, output, x in zip(
                    chunk, answer_samples(model, tokenizer, chunk, ids, settings), ids, strict=True
                ):
                    record = _score(sample, output, len(x))
                    done[sample.task, sample.length, sample.index] = record
                    pred_file.write(json.dumps(record) + "\n")
                pred_file.flush()
                advance(len(chunk))
            results = build_results(
                done,
                cells,
                model,
                tokenizer,
                settings,
                data_identity(samples, settings),
                prior_s + time.perf_counter() - start,
                out,
                note=note,
            )
    finish_report(results, out, show=settings.progress)
    return results
