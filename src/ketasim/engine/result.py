"""Simulation results: times, states, named outputs with units, and a status.

>>> import numpy as np
>>> r = Result(model_name="m", engine="analytic", id=np.array([1, 1]), time=np.array([0.0, 1.0]),
...            evid=np.array([0, 0]), state_names=["central"], states=np.array([[1.0], [0.5]]),
...            outputs={"cp": np.array([0.1, 0.05])}, output_units={"cp": "mg/L"})
>>> r.to_frame().columns.tolist()
['id', 'time_h', 'evid', 'name', 'kind', 'value', 'unit']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ketasim.errors import ModelError as ValidationError
from ketasim.errors import SolverError

if TYPE_CHECKING:  # pandas is imported when a frame is made
    import pandas as pd


class Status(StrEnum):
    """How a solve ended. A ``str`` subclass: ``Status.OK == "ok"`` and JSON shows ``"ok"``.

    >>> Status.FAILED == "failed", str(Status.OK)
    (True, 'ok')
    """

    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True, eq=False)
class Result:
    """Rows are event-table records (or requested output times) of one or more subjects."""

    model_name: str
    engine: str
    id: np.ndarray
    time: np.ndarray
    evid: np.ndarray
    state_names: list[str]
    states: np.ndarray
    outputs: dict[str, np.ndarray]
    output_units: dict[str, str]
    status: Status = Status.OK
    state_units: dict[str, str] = field(default_factory=dict)
    molar_masses: dict[str, float] = field(default_factory=dict)
    messages: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # a plain string ("ok"/"failed") from older callers becomes the enum
        object.__setattr__(self, "status", Status(self.status))

    @property
    def ok(self) -> bool:
        """True when every subject solved."""
        return self.status is Status.OK

    def raise_on_failure(self) -> Result:
        """Raise :class:`SolverError` unless the solve succeeded; return self otherwise."""
        if not self.ok:
            raise SolverError("engine", f"{self.engine} failed: {'; '.join(self.messages)}",
                              "tighten or loosen tolerances, or use another engine")
        return self

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.outputs:
            return self.outputs[name]
        if name in self.state_names:
            return self.states[:, self.state_names.index(name)]
        raise KeyError(name)

    def in_units(self, name: str, unit: str) -> np.ndarray:
        """Output ``name`` converted to ``unit`` (e.g. ``"ng/mL"``, or ``"µM"`` when the
        output declares a molar mass).

        >>> import numpy as np
        >>> r = Result("m", "analytic", np.array([1]), np.array([0.0]), np.array([0]), [],
        ...            np.empty((1, 0)), {"c": np.array([0.2377])}, {"c": "mg/L"},
        ...            molar_masses={"c": 237.7})
        >>> round(float(r.in_units("c", "ng/mL")[0]), 6), round(float(r.in_units("c", "uM")[0]), 6)
        (237.7, 1.0)
        """
        from ketasim.units import convert
        values = self.outputs[name]
        have = self.output_units.get(name, "")
        target = unit.replace("µ", "u").replace("μ", "u")
        if target in ("uM", "umol/L"):
            mm = self.molar_masses.get(name)
            if mm is None:
                raise ValidationError("unit", f"output {name!r} has no molar mass",
                                      "declare Output(..., molar_mass=...) to report µM")
            # mg/L divided by g/mol is mmol/L; ×1000 gives µmol/L
            return np.asarray(values) * convert(1.0, have, "mg/L", field=name) / mm * 1000.0
        factor = convert(1.0, have, target, field=name)
        return np.asarray(values) * factor

    def to_frame(self, *, wide: bool = False) -> pd.DataFrame:
        """A tidy (long) DataFrame ``id, time_h, evid, name, kind, value, unit``; or wide."""
        import pandas as pd
        base = pd.DataFrame({"id": self.id, "time_h": self.time, "evid": self.evid})
        if wide:
            cols = {n: self.states[:, i] for i, n in enumerate(self.state_names)}
            cols.update(self.outputs)
            return pd.concat([base, pd.DataFrame(cols)], axis=1)
        parts = []
        for i, n in enumerate(self.state_names):
            parts.append(base.assign(name=n, kind="state", value=self.states[:, i],
                                     unit=self.state_units.get(n, "")))
        for n, v in self.outputs.items():
            parts.append(base.assign(name=n, kind="output", value=v,
                                     unit=self.output_units.get(n, "")))
        return pd.concat(parts, ignore_index=True)

    def to_csv(self, path: str | Path, *, wide: bool = False) -> Path:
        """Write :meth:`to_frame` to ``path``."""
        p = Path(path)
        self.to_frame(wide=wide).to_csv(p, index=False)
        return p


__all__ = ["Result", "Status"]
