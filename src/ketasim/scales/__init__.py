"""Clinical rating scales: items, ranges, scoring, bands, response and remission."""

from ketasim.scales.instruments import (
    INSTRUMENTS,
    Instrument,
    ScaleError,
    Score,
    band_of,
    get_instrument,
    is_remission,
    is_response,
    score,
)

__all__ = ["INSTRUMENTS", "Instrument", "ScaleError", "Score", "band_of", "get_instrument",
           "is_remission", "is_response", "score"]
