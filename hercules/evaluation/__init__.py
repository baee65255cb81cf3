"""BABILong evaluation: metrics, the evaluator and its reports.

Examples:
    >>> from hercules.evaluation import EvalSettings, evaluate_babilong
    >>> EvalSettings().lengths
    ['0k', '1k', '2k']
"""

from hercules.evaluation.evaluator import evaluate_babilong, generate_answers
from hercules.evaluation.metrics import METRICS, babilong_score, contains, exact_match
from hercules.evaluation.settings import EvalSettings

__all__ = [
    "METRICS",
    "EvalSettings",
    "babilong_score",
    "contains",
    "evaluate_babilong",
    "exact_match",
    "generate_answers",
]
