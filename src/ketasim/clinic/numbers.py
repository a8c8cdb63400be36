"""Safe entry of clinical numbers (ISMP decimal rules, metric units only).

A leading zero is required (``0.5``, not ``.5``), trailing zeros are refused (``5``, not
``5.0``; they turn into ten-fold errors when the point is missed), and locale commas,
scientific notation, signs, spaces inside numbers and non-numbers are refused rather than
guessed at (ISMP's error-prone abbreviations and dose designations).

>>> parse_number("0.5", field="dose")
0.5
>>> parse_number(".5", field="dose")
Traceback (most recent call last):
...
ketasim.clinic.numbers.NumberEntryError: dose: '.5' has no leading zero (fix: write 0.5)
"""

from __future__ import annotations

import re

from ketasim.errors import KetasimError


class NumberEntryError(KetasimError):
    """A number typed in a form that could be misread."""


_PLAIN = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


def parse_number(text: str, *, field: str, allow_zero: bool = False) -> float:
    """Read a clinical number strictly; never coerce."""
    if not isinstance(text, str):
        raise NumberEntryError(field, f"{text!r} is not text", "type the number")
    raw = text.strip()
    if raw == "":
        raise NumberEntryError(field, "is empty", "type a number")
    if raw.startswith("."):
        raise NumberEntryError(field, f"{raw!r} has no leading zero", f"write 0{raw}")
    if "," in raw:
        raise NumberEntryError(field, f"{raw!r} uses a comma", "use a decimal point: "
                               + raw.replace(",", "."))
    if re.search(r"[eE]", raw):
        raise NumberEntryError(field, f"{raw!r} is in scientific notation",
                               "write the number out in full")
    if raw.startswith(("+", "-")):
        raise NumberEntryError(field, f"{raw!r} has a sign", "type a positive number")
    m = _PLAIN.fullmatch(raw)
    if m is None:
        raise NumberEntryError(field, f"cannot read {raw!r}",
                               "type digits with at most one decimal point, e.g. 0.5 or 84")
    if m.group(2) and m.group(2).endswith("0"):
        trimmed = raw.rstrip("0").rstrip(".")
        raise NumberEntryError(field, f"{raw!r} has a trailing zero", f"write {trimmed}")
    value = float(raw)
    if value == 0 and not allow_zero:
        raise NumberEntryError(field, "is 0", "type the intended value")
    return value


__all__ = ["NumberEntryError", "parse_number"]
