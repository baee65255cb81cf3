"""BABILong evaluation: metrics, the evaluator and its reports.

Examples:
    >>> from hercules.evaluation import EvalSettings, evaluate_babilong
    >>> EvalSettings().lengths
    ['0k', '1k', '2k']
"""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "EvalSettings": "hercules.evaluation.settings",
    "METRICS": "hercules.evaluation.metrics",
    "babilong_score": "hercules.evaluation.metrics",
    "contains": "hercules.evaluation.metrics",
    "evaluate_babilong": "hercules.evaluation.evaluator",
    "exact_match": "hercules.evaluation.metrics",
    "generate_answers": "hercules.evaluation.evaluator",
}
lazy_package(__name__, _EXPORTS)

__all__ = [
    "METRICS",
    "EvalSettings",
    "babilong_score",
    "contains",
    "evaluate_babilong",
    "exact_match",
    "generate_answers",
]
