"""Start-up stays light: the command line and the regimen language import no heavy library.

``ketasim --help`` should answer in < 0.3 s and ``ketasim regimen ...`` in < 0.5 s in a fresh
process (benchmarks/cli_latency.py measures them); these tests pin the cause, which modules a
fresh interpreter loads, rather than wall time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "pint", "matplotlib", "scipy", "numba", "fastapi", "sqlalchemy", "uvicorn")


def modules_after(code: str) -> set[str]:
    """Top-level packages imported after running ``code`` in a new interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def loaded_after(code: str) -> set[str]:
    """The HEAVY packages imported after running ``code`` in a new interpreter."""
    return modules_after(code) & set(HEAVY)


def test_the_cli_module_and_its_help_import_nothing_heavy() -> None:
    assert not {"numpy", *HEAVY} & modules_after("import ketasim.cli.app")
    assert loaded_after("import contextlib, io, sys\n"
                        "sys.argv = ['ketasim', '--help']\n"
                        "from ketasim.cli.app import main\n"
                        "with contextlib.redirect_stdout(io.StringIO()):\n"
                        "    try:\n        main()\n    except SystemExit:\n        pass") == set()


def test_reading_a_regimen_needs_no_pint_and_no_pandas() -> None:
    assert loaded_after("from ketasim.dosing import parse_regimen\n"
                        "r = parse_regimen('0.5 mg/kg IV over 40 min twice weekly for 3 weeks')\n"
                        "assert r.n_administrations == 6\n"
                        "list(r.administrations(70.0))") == set()


def test_the_package_namespace_is_lazy() -> None:
    assert loaded_after("import ketasim, ketasim.engine, ketasim.dosing, ketasim.model") == set()
    assert {"pint"} <= loaded_after("from ketasim import Model")


def test_lazy_exports_are_the_objects_and_win_over_submodules() -> None:
    import ketasim
    import ketasim.engine.simulate  # the submodule of the same name as the function
    from ketasim.engine import simulate
    from ketasim.engine.simulate import simulate as defined

    assert simulate is defined and ketasim.simulate is defined
    for name in ketasim.__all__:
        assert getattr(ketasim, name) is not None
    assert set(ketasim.__all__) <= set(dir(ketasim))
    with pytest.raises(AttributeError):
        _ = ketasim.no_such_name
    # submodules stay reachable as attributes, as with the former eager imports
    from ketasim.dosing.schedule import build_schedule
    assert ketasim.dosing.schedule.build_schedule is build_schedule


@pytest.mark.parametrize("unit", ["s", "min", "h", "d", "week"])
def test_time_unit_table_equals_pint(unit: str) -> None:
    from ketasim.units import _TIME_ALIASES, registry, time_unit_factor
    pint_value = registry().Quantity(1.0, _TIME_ALIASES[unit]).to("hour").magnitude
    assert time_unit_factor(unit) == float(pint_value)


@pytest.mark.parametrize("unit", ["mg", "g", "µg", "mcg", "ng"])
def test_amount_unit_table_equals_pint(unit: str) -> None:
    from ketasim.units import _AMOUNT_ALIASES, amount_unit_factor, registry
    pint_value = registry().Quantity(1.0, _AMOUNT_ALIASES[unit]).to("milligram").magnitude
    assert amount_unit_factor(unit)[0] == float(pint_value)
