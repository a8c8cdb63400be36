"""docs/estimation.md: its worked example runs, in order, in one namespace, from the
repository root, on the example patient files, and prints what the text says."""

from __future__ import annotations

from pathlib import Path

from doc_blocks import run_python_blocks

ROOT = Path(__file__).resolve().parent.parent


def test_worked_example_runs(capsys) -> None:
    assert run_python_blocks("docs/estimation.md") == 4
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "11 6 2"
    emax, placebo, names = out[1].split(" ", 2)
    assert float(emax) > 0.3 and 0.0 < float(placebo) < 1.0
    assert names == "['baseline_madrs', 'emax', 'placebo']"
    assert out[2].startswith("phq9 ") and out[2].endswith(" True")
    assert out[3] == "True"
    assert out[4] == "True True"
    assert out[5] == "[14.0, 7.0, 4.0]"
    chosen, ok = out[6].split()
    assert chosen in ("4.0", "7.0", "14.0") and ok == "True"


def test_example_design_file_is_valid() -> None:
    from ketasim.design.population import candidate_regimens, read_design
    spec = read_design(ROOT / "examples" / "design_maintenance.toml")
    assert len(candidate_regimens(spec)) == 10
