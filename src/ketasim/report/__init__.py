"""Reports: summaries and pictures of results."""

from ketasim.report.plots import DISCLAIMER, plot_result
from ketasim.report.summary import summarize

__all__ = ["DISCLAIMER", "plot_result", "summarize"]
