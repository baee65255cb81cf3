"""Built-in offline stand-in for bAbI and PG-19: procedural stories, questions and background prose.

**This is a stand-in, not the benchmark.** It lets the main job and the tests run on a fresh machine with no
files and no network. Scores on it are not comparable with published BABILong numbers; for those, use the
original bAbI files with book text (``source="babi"``) or the hub dataset (``source="hub"``).

Tasks qa1–qa5 are simulated in a small world with the same kind of actors, places and objects as bAbI:

- qa1 single supporting fact: people move; "Where is Mary?"
- qa2 two supporting facts: people carry objects; "Where is the milk?"
- qa3 three supporting facts: "Where was the apple before the kitchen?"
- qa4 two-argument relations: "The office is north of the kitchen." "What is north of the kitchen?"
- qa5 three-argument relations: people move, take objects and give them to someone in the same place; only the
  holder of an object gives it. "Fred gave the milk to Jeff." "Who received the milk?"

Examples:
    >>> samples = generate_task("qa1", n=2, seed=0)
    >>> samples[0].answer in PLACES
    True
"""

from __future__ import annotations

import random

from hercules.data.babi import BabiSample

PEOPLE = ("Mary", "John", "Daniel", "Sandra")
GIVERS = ("Bill", "Fred", "Jeff", "Mary")
PLACES = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
OBJECTS = ("apple", "football", "milk")
DIRECTIONS = {"north": "south", "south": "north", "east": "west", "west": "east"}
_MOVES = ("moved to", "went to", "journeyed to", "travelled to", "went back to")
_TAKES = ("got", "grabbed", "picked up", "took")
_DROPS = ("dropped", "discarded", "put down", "left")
PROCEDURAL_TASKS = ("qa1", "qa2", "qa3", "qa4", "qa5")


def _move(rng: random.Random, where: dict[str, str], names: tuple[str, ...]) -> tuple[str, str]:
    person = rng.choice(names)
    place = rng.choice([p for p in PLACES if p != where.get(person)])
    where[person] = place
    return person, f"{person} {rng.choice(_MOVES)} the {place}."


def _qa1(rng: random.Random) -> BabiSample:
    where: dict[str, str] = {}
    facts, last_fact = [], {}
    for _ in range(rng.randint(2, 10)):
        person, fact = _move(rng, where, PEOPLE)
        last_fact[person] = len(facts)
        facts.append(fact)
    person = rng.choice(sorted(where))
    return BabiSample("qa1", tuple(facts), f"Where is {person}?", where[person], (last_fact[person],))


def _carry_story(rng: random.Random, steps: int) -> tuple[list[str], list[tuple[str, str, int]]]:
    """Simulate people moving, taking and dropping objects.

    Returns the facts and, per fact, the events ``(object, place, fact index)`` of objects whose place was set.
    """
    where: dict[str, str] = {}
    held: dict[str, str] = {}  # object -> holder
    placed_at: dict[str, str] = {}  # object -> place (follows its holder)
    facts: list[str] = []
    events: list[tuple[str, str, int]] = []
    for _ in range(steps):
        roll = rng.random()
        people = [p for p in PEOPLE if p in where]
        person = rng.choice(people) if people else None
        # A person can take an object lying where they are, or one not yet seen anywhere.
        free = [
            o for o in OBJECTS if o not in held and placed_at.get(o, where.get(person)) == where.get(person)
        ]
        if roll < 0.25 and free and person is not None:
            obj = rng.choice(free)
            held[obj], placed_at[obj] = person, where[person]
            facts.append(f"{person} {rng.choice(_TAKES)} the {obj} there.")
            events.append((obj, where[person], len(facts) - 1))
        elif roll < 0.35 and held:
            obj = rng.choice(sorted(held))
            facts.append(f"{held.pop(obj)} {rng.choice(_DROPS)} the {obj}.")
        else:
            mover, fact = _move(rng, where, PEOPLE)
            facts.append(fact)
            for obj in [o for o, h in held.items() if h == mover]:
                placed_at[obj] = where[mover]
                events.append((obj, where[mover], len(facts) - 1))
    return facts, events


def _qa2(rng: random.Random) -> BabiSample:
    while True:
        facts, events = _carry_story(rng, rng.randint(4, 14))
        if events:
            obj, place, index = events[-1]
            return BabiSample("qa2", tuple(facts), f"Where is the {obj}?", place, (index,))


def _qa3(rng: random.Random) -> BabiSample:
    while True:
        facts, events = _carry_story(rng, rng.randint(8, 20))
        for obj in rng.sample(OBJECTS, len(OBJECTS)):
            trail: list[tuple[str, int]] = []
            for o, place, index in events:
                if o == obj and (not trail or trail[-1][0] != place):
                    trail.append((place, index))
            names = [p for p, _ in trail]
            if len(trail) >= 2 and names.count(names[-1]) == 1:
                (before, i0), (after, i1) = trail[-2], trail[-1]
                question = f"Where was the {obj} before the {after}?"
                return BabiSample("qa3", tuple(facts), question, before, (i0, i1))


def _qa4(rng: random.Random) -> BabiSample:
    a, b, c = rng.sample(PLACES, 3)
    d1, d2 = rng.sample(sorted(DIRECTIONS), 2)
    facts = (f"The {a} is {d1} of the {b}.", f"The {c} is {d2} of the {b}.")
    pick = rng.randrange(2)
    subject, direction = (a, d1) if pick == 0 else (c, d2)
    if rng.random() < 0.5:
        return BabiSample("qa4", facts, f"What is {direction} of the {b}?", subject, (pick,))
    return BabiSample("qa4", facts, f"What is the {b} {DIRECTIONS[direction]} of?", subject, (pick,))


def _give_story(rng: random.Random, steps: int) -> tuple[list[str], list[tuple[str, str, str, int]]]:
    """Simulate people moving, taking, dropping and giving objects, tracking who holds what.

    A person gives only an object they hold, to someone in the same place, as in bAbI. Returns the facts and the
    gives ``(giver, object, receiver, fact index)``.
    """
    where: dict[str, str] = {}
    held: dict[str, str] = {}  # object -> holder
    lying: dict[str, str] = {}  # object -> place where it was dropped
    facts: list[str] = []
    gives: list[tuple[str, str, str, int]] = []
    for _ in range(steps):
        roll, people = rng.random(), sorted(where)
        pairs = [(o, h, r) for o, h in sorted(held.items()) for r in people if r != h and where[r] == where[h]]
        person = rng.choice(people) if people else None
        free = [o for o in OBJECTS if o not in held and lying.get(o, where.get(person)) == where.get(person)]
        if roll < 0.4 and pairs:
            obj, giver, receiver = rng.choice(pairs)
            held[obj] = receiver
            facts.append(f"{giver} gave the {obj} to {receiver}.")
            gives.append((giver, obj, receiver, len(facts) - 1))
        elif roll < 0.65 and free and person is not None:
            obj = rng.choice(free)
            held[obj] = person
            lying.pop(obj, None)
            facts.append(f"{person} {rng.choice(_TAKES)} the {obj} there.")
        elif roll < 0.7 and held:
            obj = rng.choice(sorted(held))
            lying[obj] = where[held[obj]]
            facts.append(f"{held.pop(obj)} {rng.choice(_DROPS)} the {obj}.")
        else:
            facts.append(_move(rng, where, GIVERS)[1])
    return facts, gives


def _qa5(rng: random.Random) -> BabiSample:
    while True:
        facts, gives = _give_story(rng, rng.randint(6, 16))
        if gives:
            break
    giver, obj, receiver, index = gives[-1]
    questions = [
        (f"Who gave the {obj} to {receiver}?", giver),
        (f"Who received the {obj}?", receiver),
        (f"Who did {giver} give the {obj} to?", receiver),
        (f"Who gave the {obj}?", giver),
    ]
    if all(o == obj for g, o, r, _ in gives if (g, r) == (giver, receiver)):  # otherwise "what" is ambiguous
        questions.append((f"What did {giver} give to {receiver}?", obj))
    question, answer = rng.choice(questions)
    return BabiSample("qa5", tuple(facts), question, answer, (index,))


_GENERATORS = {"qa1": _qa1, "qa2": _qa2, "qa3": _qa3, "qa4": _qa4, "qa5": _qa5}


def generate_task(task: str, n: int, seed: int = 0) -> list[BabiSample]:
    """Generate ``n`` procedural samples of ``task`` (qa1–qa5), reproducibly from ``seed``."""
    if task not in _GENERATORS:
        raise ValueError(f"procedural task {task!r} is not available; choose from {list(PROCEDURAL_TASKS)}")
    rng = random.Random(f"hercules-procedural-{task}-{seed}")
    return [_GENERATORS[task](rng) for _ in range(n)]


_SUBJECTS = (
    "The old miller",
    "A tired traveller",
    "The young clerk",
    "Her grandmother",
    "The captain",
    "A quiet stranger",
    "The schoolmaster",
    "His cousin",
    "The shepherd",
    "A merchant from the north",
    "The widow",
    "The doctor",
)
_VERBS = (
    "walked slowly along",
    "looked for a long while at",
    "spoke at length about",
    "remembered",
    "wrote a letter about",
    "argued with the neighbours over",
    "dreamed of",
    "sang softly of",
    "laughed at",
)
_THINGS = (
    "the grey river",
    "the distant hills",
    "the harvest",
    "the storm of the previous winter",
    "the village fair",
    "an unpaid debt",
    "the lamp by the window",
    "the narrow road to town",
    "the bells of the church",
    "a promise made in youth",
    "the price of bread",
    "the ships in the harbour",
    "the long evenings",
)
_TAILS = (
    "",
    "",
    " while the wind rose",
    " before the sun went down",
    " as the rain began",
    " without a word",
    " and nobody answered",
    " until the candles burned low",
    " for reasons no one understood",
)


def background_sentences(n: int, seed: int = 0) -> list[str]:
    """Procedural distractor prose: ``n`` simple narrative sentences that never mention bAbI actors or places."""
    rng = random.Random(f"hercules-background-{seed}")
    return [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_THINGS)}{rng.choice(_TAILS)}."
        for _ in range(n)
    ]
