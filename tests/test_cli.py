"""The command line: demo output, regimen printing, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketasim", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_demo_prints_summary_and_writes_files(tmp_path: Path) -> None:
    r = run("demo", "--out", str(tmp_path), "--subjects", "40", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "Cmax" in r.stdout and "40 virtual patients" in r.stdout
    assert "racemic_enantiomers" in r.stdout and "NMDA occupancy" in r.stdout
    assert "does not replace a clinician" in r.stdout
    png = tmp_path / "result.png"
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = pd.read_csv(tmp_path / "result.csv")
    assert list(frame.columns) == ["subject", "time_h", "analyte", "conc_ng_per_ml",
                                   "conc_umol_per_l"]
    assert frame[frame.analyte == "ketamine"].conc_ng_per_ml.max() == pytest.approx(159, rel=0.02)


def test_regimen_command_round_trips(tmp_path: Path) -> None:
    csv = tmp_path / "events.csv"
    r = run("regimen", "56 mg intranasal on day 1 then 84 mg twice weekly for 4 weeks",
            "--csv", str(csv))
    assert r.returncode == 0, r.stderr
    assert "56 mg intranasal on day 1 then 84 mg twice weekly for 4 weeks" in r.stdout
    events = pd.read_csv(csv)
    assert list(events["AMT"]) == [56.0, 84.0]
    assert list(events["ADDL"]) == [0, 7]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,TIME,EVID,AMT,CMT\n1,0,1,-5,1\n")
    cases = [("regimen", "0.5 mg/kg IV over 40 min weekly"),
             ("regimen", "0.5 mg/kg IV over 40 min", "--weight", "900"),
             ("dataset", str(bad)),
             ("dataset", str(tmp_path / "missing.csv")),
             ("demo", "--regimen", "12 mg")]
    for args in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
        assert len(lines) == 1, (args, r.stderr)
        assert lines[0].startswith("error: ") and "fix:" in lines[0]
        assert "Traceback" not in r.stderr
