"""Statistics over seeds, learning-curve plots and Markdown/HTML reports of runs."""

from netmarl.report.report import make_report
from netmarl.report.stats import (
    Interval,
    Score,
    average_probability_of_improvement_ci,
    bootstrap_ci,
    final_return,
    iqm,
    iqm_ci,
    matches_best,
    max_average_return,
    probability_of_improvement,
    probability_of_improvement_ci,
    rank_against_best,
)

__all__ = [
    "Interval",
    "Score",
    "average_probability_of_improvement_ci",
    "bootstrap_ci",
    "final_return",
    "iqm",
    "iqm_ci",
    "make_report",
    "matches_best",
    "max_average_return",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "rank_against_best",
]
