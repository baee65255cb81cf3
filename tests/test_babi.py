"""bAbI parser: samples per question, facts so far without earlier questions, supporting-fact indices."""

from pathlib import Path

import pytest

from hercules.data.babi import find_babi_file, load_babi_task, parse_babi

BABI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "babi"
needs_babi = pytest.mark.skipif(not BABI.is_dir(), reason="../shared/data/babi is absent")

STORY = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Sandra moved to the garden.
6 Where is Daniel? \thallway\t4
1 Sandra travelled to the office.
2 Sandra went to the bathroom.
3 Where is Sandra? \tbathroom\t2
"""


def test_parse_one_sample_per_question_with_facts_so_far():
    samples = parse_babi(STORY.splitlines(), task="qa1")
    assert [s.answer for s in samples] == ["bathroom", "hallway", "bathroom"]
    assert samples[0].facts == ("Mary moved to the bathroom.", "John went to the hallway.")
    # earlier questions are dropped; facts keep accumulating within the story
    assert samples[1].facts == samples[0].facts + (
        "Daniel went back to the hallway.",
        "Sandra moved to the garden.",
    )
    assert samples[1].facts[samples[1].supporting[0]] == "Daniel went back to the hallway."
    # ID 1 starts a new story
    assert samples[2].facts == ("Sandra travelled to the office.", "Sandra went to the bathroom.")
    assert samples[2].question == "Where is Sandra?"


def test_bad_line_names_line_number():
    with pytest.raises(ValueError, match="line 2"):
        parse_babi(["1 Mary went home.", "oops"], task="qa1")


def test_missing_file_lists_present_tasks(tmp_path):
    (tmp_path / "qa1_single-supporting-fact_test.txt").write_text(STORY)
    assert find_babi_file(tmp_path, "qa1").name.startswith("qa1_")
    with pytest.raises(FileNotFoundError, match=r"qa2.*tasks present: \['qa1'\]"):
        find_babi_file(tmp_path, "qa2")


@needs_babi
@pytest.mark.parametrize("task", [f"qa{i}" for i in range(1, 11)])
def test_real_test_files_have_1000_questions(task):
    samples = load_babi_task(BABI, task, "test")
    assert len(samples) == 1000
    for s in samples:
        assert s.facts and s.question and s.answer
        assert all(0 <= i < len(s.facts) for i in s.supporting)
    # every supporting fact of the first qa1 question names the person asked about
    if task == "qa1":
        first = samples[0]
        person = first.question.split()[-1].rstrip("?")
        assert person in first.facts[first.supporting[0]]
        assert first.answer in first.facts[first.supporting[0]]
