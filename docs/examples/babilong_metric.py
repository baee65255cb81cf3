"""Scoring BABILong answers: our metric, including the two cases where the published scorer is wrong."""

from hercules.evaluation import babilong_score, contains, exact_match

# The label metric: find the task's answer labels in the first sentence of the output, ignore labels that the
# question mentions, and require exactly the target's labels.
assert babilong_score("Mary is in the kitchen.", "kitchen", "Where is Mary?", "qa1")
assert not babilong_score("Mary is in the kitchen or the office.", "kitchen", "Where is Mary?", "qa1")
assert babilong_score("The kitchen. Later she went to the garden.", "kitchen", "Where is Mary?", "qa1")  # 1st sentence
assert babilong_score("She carries milk and apple", "apple,milk", "What is Mary carrying?", "qa8")  # a list answer

# Defect 1 of the published scorer: labels matched as substrings, so the output "none" also contains "one" and
# a correct answer to a counting question (qa7) gets two labels. Here labels are whole words.
assert babilong_score("none", "none", "How many objects is Mary carrying?", "qa7")
assert not babilong_score("none", "one", "How many objects is Mary carrying?", "qa7")

# Defect 2: the published scorer lower-cases the output and then splits it on "Question", which can no longer
# occur; an echoed next question, with its own labels, then stays in the answer. Here the split comes first.
echoed = "Mary is in the kitchen Question: Is Mary in the office"
assert babilong_score(echoed, "kitchen", "Where is Mary?", "qa1")

# Two simpler metrics are reported beside it.
assert exact_match("The kitchen.", "kitchen")  # normalised first sentence == normalised target
assert contains("I think she is in the kitchen now", "kitchen")  # the target occurs as whole words
