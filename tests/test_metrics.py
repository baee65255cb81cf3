"""BABILong metric semantics, its two fixed defects, and the exact-match / contains metrics."""

import pytest

from hercules.evaluation.metrics import babilong_score, contains, exact_match, first_sentence


@pytest.mark.parametrize(
    ("output", "target", "question", "task", "expected"),
    [
        ("The most recent location of Mary is the kitchen.", "kitchen", "Where is Mary?", "qa1", True),
        ("KITCHEN", "kitchen", "Where is Mary?", "qa1", True),
        ("Mary is in the garden.", "kitchen", "Where is Mary?", "qa1", False),
        # two candidate labels in the answer: not exactly the target's labels
        ("Mary is in the kitchen or the garden.", "kitchen", "Where is Mary?", "qa1", False),
        # only the first sentence counts
        (
            "Mary is in the kitchen. Before that she was in the garden.",
            "kitchen",
            "Where is Mary?",
            "qa1",
            True,
        ),
        ("Mary is in the garden.\nkitchen", "kitchen", "Where is Mary?", "qa1", False),
        # labels that occur in the question are ignored
        ("The bedroom is east of the bathroom.", "bedroom", "What is the bathroom east of?", "qa4", True),
        ("Fred gave the football to Jeff", "fred", "Who gave the football to Jeff?", "qa5", True),
        # list answers need all parts and nothing else
        ("apple, milk", "apple,milk", "What is Mary carrying?", "qa8", True),
        ("milk and apple", "apple,milk", "What is Mary carrying?", "qa8", True),
        ("apple", "apple,milk", "What is Mary carrying?", "qa8", False),
        ("apple, milk, football", "apple,milk", "What is Mary carrying?", "qa8", False),
        ("yes", "yes", "Is John in the kitchen?", "qa6", True),
        ("No, he is not.", "yes", "Is John in the kitchen?", "qa6", False),
        ("maybe", "maybe", "Is Bill in the office?", "qa10", True),
    ],
)
def test_babilong_metric_cases(output, target, question, task, expected):
    assert babilong_score(output, target, question, task) is expected


def test_defect_none_does_not_match_one():
    """Published scorer: 'one' in 'none' is True, so the correct answer 'none' had two labels and scored wrong."""
    question = "How many objects is Mary carrying?"
    assert babilong_score("none", "none", question, "qa7")
    assert babilong_score("Mary is carrying none.", "none", question, "qa7")
    assert not babilong_score("none", "one", question, "qa7")
    assert babilong_score("one", "one", question, "qa7")
    # the substring test the published scorer makes really does fire on this output
    assert "one" in "none"


def test_defect_echoed_question_is_cut_before_lowercasing():
    """Published scorer lower-cased, then split on 'Question': an echoed question (with labels) stayed in."""
    output = "kitchen Question: Where was Mary before the garden"
    assert babilong_score(output, "kitchen", "Where is Mary?", "qa1")
    assert first_sentence(output) == "kitchen"
    # the same echo after <context> is also cut
    assert babilong_score("office <context> Mary went to the garden", "office", "Where is Mary?", "qa1")


def test_exact_match_and_contains():
    assert exact_match("The kitchen.", "kitchen")
    assert not exact_match("Mary is in the kitchen.", "kitchen")
    assert contains("Mary is in the kitchen.", "kitchen")
    assert not contains("Mary is in the kitchenette.", "kitchen")
    assert contains("She has the milk and the apple", "apple,milk")
    assert not contains("She has the milk", "apple,milk")
    # a comma in the output separates words; spaces around list commas do not matter
    assert contains("The kitchen, then the hallway.", "kitchen")
    assert exact_match("Apple, milk.", "apple,milk")
    assert not exact_match("Apple, milk, egg.", "apple,milk")


def test_tasks_beyond_qa10_use_target_words_as_labels():
    assert babilong_score("s,w", "s,w", "How do you go from the kitchen to the garden?", "qa19")
    assert not babilong_score("n,w", "s,w", "How do you go from the kitchen to the garden?", "qa19")
