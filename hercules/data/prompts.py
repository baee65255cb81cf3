"""Prompts for BABILong tasks, in BABILong's structure and in our own words.

A prompt is: an instruction saying what the facts are about and how to use them, a few worked examples, a
post-prompt fixing the answer format, then the context (inside ``<context>`` tags) and the question. With a
tokenizer that has a chat template the prompt is one user turn followed by the assistant's generation prompt;
otherwise a plain ``Answer:`` cue is appended.

Examples:
    >>> text = render_prompt("qa1", context="Mary went to the office.", question="Where is Mary?")
    >>> text.splitlines()[-1]
    'Question: Where is Mary?'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QUESTION = "\n\nQuestion: {question}"  # also what a further question after an answer reads (every_person)
TEMPLATE = "{instruction}\n\n{examples}\n\n{post_prompt}\n\n<context>\n{context}\n</context>" + QUESTION


@dataclass(frozen=True)
class TaskPrompt:
    """The three fixed parts of a task's prompt."""

    instruction: str
    examples: tuple[tuple[str, str], ...]  # (context + question, answer)
    post_prompt: str

    def examples_text(self) -> str:
        return "\n\n".join(f"<example>\n{q}\nAnswer: {a}\n</example>" for q, a in self.examples)


_LOCATION_POST = (
    "Answer with a single short sentence that names the place, like 'Anna is in the attic.' or 'The lamp is in "
    "the shed.', and write nothing else."
)

PROMPTS: dict[str, TaskPrompt] = {
    "qa1": TaskPrompt(
        "Below is a text in which a few facts about where people go are hidden among unrelated sentences. "
        "Answer the question using only those facts. People move around, so a person is where they went last.",
        (
            (
                "Anna went to the porch. Tom walked into the cellar. Anna moved to the attic. Where is Anna?",
                "Anna is in the attic.",
            ),
            ("Tom walked into the cellar. Rita ran to the shed. Where is Tom?", "Tom is in the cellar."),
        ),
        _LOCATION_POST,
    ),
    "qa2": TaskPrompt(
        "Below is a text in which facts about people moving and carrying things are hidden among unrelated "
        "sentences. Answer using only those facts. An object someone carries is wherever that person is; an object "
        "put down stays where it was put down.",
        (
            ("Tom took the lamp. Tom went to the shed. Where is the lamp?", "The lamp is in the shed."),
            (
                "Rita picked up the key. Rita went to the porch. Rita put down the key. Rita went to the attic. "
                "Where is the key?",
                "The key is in the porch.",
            ),
        ),
        _LOCATION_POST,
    ),
    "qa3": TaskPrompt(
        "Below is a text in which facts about people moving and carrying things are hidden among unrelated "
        "sentences. Answer using only those facts. Follow the object from place to place: the question asks "
        "where it was just before it reached the named place.",
        (
            (
                "Tom took the lamp in the cellar. Tom went to the shed. Tom went to the attic. "
                "Where was the lamp before the attic?",
                "The lamp was in the shed.",
            ),
        ),
        "Answer with a single short sentence that names the place, like 'The lamp was in the shed.', and write "
        "nothing else.",
    ),
    "qa4": TaskPrompt(
        "Below is a text in which facts about how places lie relative to each other are hidden among unrelated "
        "sentences. Answer using only those facts.",
        (
            (
                "The attic is east of the porch. The shed is north of the porch. What is north of the porch?",
                "The shed.",
            ),
            ("The cellar is west of the yard. What is the yard east of?", "The cellar."),
        ),
        "Reply with the name of one place, for example 'The shed.', and nothing else.",
    ),
    "qa5": TaskPrompt(
        "Below is a text in which facts about people handing objects to each other are hidden among unrelated "
        "sentences. Answer using only those facts; when things change hands several times the latest fact counts.",
        (
            ("Anna gave the lamp to Tom. Tom gave the lamp to Rita. Who received the lamp?", "Rita."),
            ("Tom handed the key to Anna. What did Tom give to Anna?", "The key."),
        ),
        "Reply with one word, a person or an object, and nothing else.",
    ),
    "qa6": TaskPrompt(
        "Below is a text in which facts about where people go are hidden among unrelated sentences. Answer the "
        "yes/no question using only those facts; a person is where they went last.",
        (
            ("Tom went to the shed. Is Tom in the shed?", "yes"),
            ("Anna went to the attic. Anna went to the porch. Is Anna in the attic?", "no"),
        ),
        "Reply with 'yes' or 'no' and nothing else.",
    ),
    "qa7": TaskPrompt(
        "Below is a text in which facts about people picking up and putting down objects are hidden among "
        "unrelated sentences. Count how many objects the person holds at the end, using only those facts.",
        (
            (
                "Tom took the lamp. Tom took the key. Tom put down the lamp. How many objects is Tom carrying?",
                "one",
            ),
            ("Anna took the key. Anna dropped the key. How many objects is Anna carrying?", "none"),
        ),
        "Reply with a number written as a word (none, one, two, three) and nothing else.",
    ),
    "qa8": TaskPrompt(
        "Below is a text in which facts about people picking up and putting down objects are hidden among "
        "unrelated sentences. List what the person holds at the end, using only those facts.",
        (
            ("Tom took the lamp. Tom took the key. What is Tom carrying?", "lamp,key"),
            ("Anna took the key. Anna dropped the key. What is Anna carrying?", "nothing"),
        ),
        "Reply with the objects separated by commas, or 'nothing', and nothing else.",
    ),
    "qa9": TaskPrompt(
        "Below is a text in which facts about where people are, or are not, are hidden among unrelated sentences. "
        "Answer the yes/no question using only those facts; the latest fact about a person counts.",
        (
            ("Tom is in the shed. Tom is no longer in the shed. Is Tom in the shed?", "no"),
            ("Anna is not in the attic. Anna went to the porch. Is Anna in the porch?", "yes"),
        ),
        "Reply with 'yes' or 'no' and nothing else.",
    ),
    "qa10": TaskPrompt(
        "Below is a text in which facts about where people are, some of them uncertain, are hidden among "
        "unrelated sentences. Answer using only those facts: 'maybe' when the facts leave it open.",
        (
            ("Tom is either in the shed or the attic. Is Tom in the shed?", "maybe"),
            ("Anna went to the porch. Is Anna in the attic?", "no"),
        ),
        "Reply with 'yes', 'no' or 'maybe' and nothing else.",
    ),
}

GENERIC = TaskPrompt(
    "Below is a text in which a few facts are hidden among unrelated sentences. Answer the question using only "
    "those facts.",
    (("Tom went to the shed. Where is Tom?", "shed"),),
    "Reply with a short answer of one or a few words and nothing else.",
)


def task_prompt(task: str) -> TaskPrompt:
    """The prompt parts of ``task``; tasks without their own (qa11–qa20) use a generic one."""
    return PROMPTS.get(task, GENERIC)


def render_prompt(task: str, context: str, question: str, few_shot: bool = True) -> str:
    """The prompt text (without chat formatting): instruction, examples, post-prompt, context, question."""
    parts = task_prompt(task)
    examples = parts.examples_text() if few_shot else ""
    text = TEMPLATE.format(
        instruction=parts.instruction,
        examples=examples,
        post_prompt=parts.post_prompt,
        context=context,
        question=question,
    )
    return text.replace("\n\n\n\n", "\n\n")


def format_for_model(prompt: str, tokenizer: Any, use_chat_template: bool = True) -> str:
    """Wrap a prompt as one user turn with the tokenizer's chat template, or append a plain ``Answer:`` cue."""
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return f"{prompt}\n\nAnswer:"


def encode_prompts(
    items: list[tuple[str, str, str]], tokenizer: Any, use_chat_template: bool = True, few_shot: bool = True
) -> list[list[int]]:
    """Token ids of full model prompts for ``(task, context, question)`` items.

    A chat template writes its own special tokens; a plain prompt gets the tokenizer's (e.g. BOS).
    """
    chat = use_chat_template and bool(getattr(tokenizer, "chat_template", None))
    texts = [format_for_model(render_prompt(t, c, q, few_shot), tokenizer, chat) for t, c, q in items]
    return tokenizer(texts, add_special_tokens=not chat)["input_ids"]
