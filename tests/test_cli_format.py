"""``--format table|csv|json`` through the installed ``ketasim`` entry point: every command
that prints results has it, json parses, csv reads with pandas, piped tables do not wrap at 80
columns, ``--json`` stays an alias, and a bad format is one line with exit code 2."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer

KETASIM = Path(sys.executable).with_name("ketasim")
REGIMEN = "0.5 mg/kg IV over 40 min twice weekly for 2 weeks"


def ketasim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert KETASIM.exists(), f"the entry point is not installed at {KETASIM}"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([str(KETASIM), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=env)


def leaf_commands() -> dict[str, object]:
    from ketasim.cli.app import app
    root = typer.main.get_command(app)
    found: dict[str, object] = {}

    def walk(cmd: object, path: str) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, f"{path} {name}".strip())
        else:
            found[path] = cmd
    walk(root, "")
    return found


def test_every_command_that_prints_results_has_format() -> None:
    commands = leaf_commands()
    assert {"models", "model", "regimen", "validate pk", "validate pd", "validate outcomes",
            "simulate", "trial", "audit verify"} <= set(commands)
    missing = [name for name, cmd in commands.items() if name != "serve"  # a server, no result
               and not any("--format" in p.opts for p in cmd.params)]  # type: ignore[attr-defined]
    assert not missing


@pytest.mark.parametrize("args, key", [
    (("models",), "models"),
    (("model", "racemic_enantiomers"), "parameters"),
    (("regimen", REGIMEN), "administrations"),
    (("simulate", "--regimen", REGIMEN, "--weight", "70", "--until", "8h"), "analytes"),
    (("occupancy", "--regimen", "0.5 mg/kg IV over 40 min", "--weight", "70"), "targets"),
    (("validate", "pk"), "targets"),
])
def test_json_parses(args: tuple[str, ...], key: str) -> None:
    r = ketasim(*args, "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data[key]


def test_json_shapes_carry_the_values() -> None:
    data = json.loads(ketasim("regimen", REGIMEN, "--weight", "80", "--format", "json").stdout)
    assert data["regimen"] == REGIMEN
    times = [a["time_h"] for a in data["administrations"]]
    assert times == [0.0, 84.0, 168.0, 252.0]  # twice weekly: II = 84 h
    assert {a["amount_mg"] for a in data["administrations"]} == {40.0}  # 0.5 mg/kg × 80 kg
    model = json.loads(ketasim("model", "racemic_enantiomers", "--format", "json").stdout)
    assert model["name"] == "racemic_enantiomers"
    assert all({"name", "value", "unit", "source", "evidence"} <= set(p)
               for p in model["parameters"])
    assert model["references"] and all(r["key"] and r["citation"] for r in model["references"])


def test_json_flag_is_an_alias_of_format_json() -> None:
    args = ("simulate", "--regimen", "84 mg intranasal", "--weight", "70", "--until", "6h")
    a, b = ketasim(*args, "--json"), ketasim(*args, "--format", "json")
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_csv_reads_with_pandas() -> None:
    r = ketasim("regimen", REGIMEN, "--weight", "70", "--format", "csv")
    assert r.returncode == 0, r.stderr
    frame = pd.read_csv(io.StringIO(r.stdout))
    assert list(frame["time (h)"]) == [0.0, 84.0, 168.0, 252.0]
    assert list(frame["amount (mg)"]) == [35.0] * 4
    r = ketasim("simulate", "--regimen", "84 mg intranasal", "--weight", "70", "--until", "6h",
                "--format", "csv")
    frame = pd.read_csv(io.StringIO(r.stdout))
    assert "ketamine" in set(frame["analyte"]) and (frame["Cmax (ng/mL)"] > 0).all()


def test_csv_with_several_tables_is_one_block_per_table() -> None:
    r = ketasim("models", "--format", "csv")
    assert r.returncode == 0, r.stderr
    blocks = r.stdout.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["# models", "# defaults"]
    models = pd.read_csv(io.StringIO(blocks[0]), comment="#")
    defaults = pd.read_csv(io.StringIO(blocks[1]), comment="#")
    assert set(defaults["model"]) <= set(models["name"])


def test_piped_tables_do_not_wrap_at_80_columns() -> None:
    r = ketasim("models")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(x) for x in lines) > 200
    # every model's description is on its own row, not folded over several lines
    rows = [x for x in lines if "racemic_enantiomers" in x and "Fanta 2015" in x]
    assert rows


def test_bad_format_is_one_line_and_exit_2() -> None:
    for args in (("models",), ("regimen", REGIMEN), ("validate", "pd")):
        r = ketasim(*args, "--format", "xml")
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: format:"), r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""
