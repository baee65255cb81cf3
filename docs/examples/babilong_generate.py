"""Generate BABILong samples: a story's facts hidden, in order, among background sentences, up to a token budget."""

from hercules.backbones.tokenizer import byte_tokenizer
from hercules.data import BabilongGenerator, SentenceSource, length_tokens
from hercules.data.procedural import background_sentences, generate_task

tokenizer = byte_tokenizer()  # lengths are counted in this tokenizer's tokens
stories = generate_task("qa2", n=2, seed=0)  # the built-in procedural stand-in for bAbI (offline)
background = SentenceSource(background_sentences(3000), name="procedural")
generator = BabilongGenerator(background, tokenizer=tokenizer, seed=0)

sample = generator.make(stories[0], "1k", index=0)
n_tokens = len(tokenizer(sample.context, add_special_tokens=False)["input_ids"])
print(f"{sample.task} {sample.length}: {n_tokens} tokens; question: {sample.question!r} → {sample.target!r}")
assert n_tokens <= length_tokens("1k")

# The facts appear in the context in their original order.
positions = [sample.context.index(fact) for fact in sample.facts]
assert positions == sorted(positions)

# Seeded per (seed, task, length, index): the same sample whatever else is generated.
assert generator.make(stories[0], "1k", index=0).context == sample.context
