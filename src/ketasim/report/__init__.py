"""Reports: summaries and pictures of results."""

from ketasim.report.plots import DISCLAIMER, plot_result
from ketasim.report.summary import percentiles, summarize

__all__ = ["DISCLAIMER", "percentiles", "plot_result", "summarize"]
