"""Reports: summaries and pictures of results."""

from typing import TYPE_CHECKING

from ketasim import _lazy

if TYPE_CHECKING:
    from ketasim.report.plots import DISCLAIMER, plot_result
    from ketasim.report.summary import summarize

__all__ = ["DISCLAIMER", "plot_result", "summarize"]

_EXPORTS = {
    "DISCLAIMER": "ketasim.report.plots",
    "plot_result": "ketasim.report.plots",
    "summarize": "ketasim.report.summary",
}
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS)
