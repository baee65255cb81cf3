"""Read a long input in segments: attention sees one segment, the memory carries everything before it."""

import torch

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.injection import memory_disabled
from hercules.injection.segments import generate_segmented, segmented_forward

model = hercules.augment(tiny_model("llama"), {"injection": {"kind": "mac"}, "layers": "all", "segment_length": 16})
context = torch.randint(3, 259, (1, 40))  # [B, T]: segments of 16, 16 and 8 tokens

# Training: logits [B, T, V], the loss over all segments, the final memory states (one per augmented layer).
out = segmented_forward(model, context, labels=context, detach_between=False)
out.loss.backward()  # reaches the memory parameters through every segment's memory updates
print(out.logits.shape, round(out.loss.item(), 3), sorted(out.states))

# With the memory off, this is exactly running the segments independently.
with torch.no_grad(), memory_disabled(model):
    pieces = [model(context[:, i : i + 16]).logits for i in range(0, 40, 16)]
    torch.testing.assert_close(segmented_forward(model, context).logits, torch.cat(pieces, dim=1))

# Question answering over a long context: read the context in segments, then generate from the question alone;
# the context reaches the answer only through the memory.
question = torch.randint(3, 259, (1, 6))
answer = generate_segmented(model, context, question, max_new_tokens=5, do_sample=False, pad_token_id=0)
assert answer.shape[1] <= question.shape[1] + 5 and torch.equal(answer[:, :6], question)
