"""Runs on a Dask cluster (ketasim.distributed): blocks seeded by index, results in order, and
the same output bit for bit on 1 and 2 local workers (a trial, a Parquet stream, a
sensitivity run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("dask.distributed")

from ketasim.distributed import (
    ScaleError,
    block_seed,
    cluster,
    map_blocks,
    n_workers,
)
from ketasim.errors import KetasimError
from ketasim.outcomes.replicates import run_replicates
from ketasim.outcomes.trial import parse_design, run_trial

TRIAL = {"indication": "trd", "n_per_arm": 30, "seed": 4,
         "arms": [{"name": "ketamine", "regimen": "0.5 mg/kg IV over 40 min"},
                  {"name": "midazolam", "control": "midazolam"}],
         "endpoint": {"instrument": "madrs", "time": "24 h", "measure": "response"}}


def test_block_seeds_are_keyed_by_the_block_index() -> None:
    assert block_seed(11, 0) == 11
    seeds = [block_seed(11, k) for k in range(1, 50)]
    assert len(set(seeds)) == len(seeds)
    child = np.random.SeedSequence(11).spawn(3)[2]
    assert block_seed(11, 2) == int(child.generate_state(1, np.uint64)[0])
    with pytest.raises(KetasimError):
        block_seed(11, -1)


def test_map_blocks_runs_here_in_order_without_a_cluster() -> None:
    assert list(map_blocks(divmod, [(7, 2), (9, 4), (1, 1)])) == [(3, 1), (2, 1), (1, 0)]
    with cluster() as client:
        assert client is None and n_workers(client) == 1
    with pytest.raises(ScaleError), cluster("tcp://127.0.0.1:1", 2):
        pass


def test_replicate_zero_is_the_trial_itself() -> None:
    d = parse_design(TRIAL)
    res = run_replicates(d, 3, block=2)
    ref = run_trial(d, predict=False)
    assert res.estimates["ketamine"][0] == ref.arms["ketamine"].estimate
    assert len(set(res.estimates["ketamine"])) > 1  # the others are other trials


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, dict[str, Any]]]:
    """The same three runs on a local cluster of 1 and of 2 worker processes."""
    from ketasim.population.stream import plan_stream, write_stream
    from ketasim.validation.sensitivity import SensitivitySettings, run_sensitivity
    folder = tmp_path_factory.mktemp("dask")
    d = parse_design(TRIAL)
    settings = SensitivitySettings(patients=10, parameters=["emax_trd", "d50", "placebo_trd"])
    out: dict[int, dict[str, Any]] = {}
    for w in (1, 2):
        with cluster(workers=w) as client:
            assert n_workers(client) == w
            trial = run_replicates(d, 6, client=client)
            job = plan_stream("0.5 mg/kg IV over 40 min", path=folder / f"pk{w}.parquet",
                              subjects=25, seed=9, times=np.arange(0.0, 4.01, 0.5),
                              threshold=100.0, block_subjects=10)
            stream = write_stream(job, client=client)
            sens = run_sensitivity(d, settings, draws=40, seed=2, client=client)
            with pytest.raises(KetasimError, match="numbered from 0"):
                list(map_blocks(block_seed, [(1, 0), (1, -1)], client=client))
        out[w] = {"trial": trial, "stream": stream, "sensitivity": sens}
    yield out


def test_a_trial_is_the_same_on_one_and_two_workers(runs: dict[int, dict[str, Any]]) -> None:
    one, two = runs[1]["trial"], runs[2]["trial"]
    assert (one.workers, two.workers) == (1, 2)
    for arm in one.estimates:
        assert np.array_equal(one.estimates[arm], two.estimates[arm])
    assert one.power == two.power
    local = run_replicates(parse_design(TRIAL), 6, block=4)
    assert np.array_equal(local.estimates["ketamine"], one.estimates["ketamine"])


def test_a_parquet_stream_is_the_same_file_on_one_and_two_workers(
        runs: dict[int, dict[str, Any]], tmp_path: Path) -> None:
    from ketasim.population.stream import plan_stream, write_stream
    a, b = runs[1]["stream"].path, runs[2]["stream"].path
    assert a.read_bytes() == b.read_bytes()
    here = write_stream(plan_stream("0.5 mg/kg IV over 40 min", path=tmp_path / "local.pq",
                                    subjects=25, seed=9, times=np.arange(0.0, 4.01, 0.5),
                                    threshold=100.0, block_subjects=10))
    assert here.path.read_bytes() == a.read_bytes()


def test_a_sensitivity_run_is_the_same_on_one_and_two_workers(
        runs: dict[int, dict[str, Any]]) -> None:
    one, two = runs[1]["sensitivity"], runs[2]["sensitivity"]
    assert np.array_equal(one.sobol.y_sample, two.sobol.y_sample)
    assert one.sobol.st == two.sobol.st and one.sobol.s1 == two.sobol.s1
    assert one.to_json()["indices"] == two.to_json()["indices"]


def test_cli_trial_on_one_and_two_workers_prints_the_same(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    path = tmp_path / "trial.toml"
    path.write_text(
        'indication = "trd"\nn_per_arm = 30\nseed = 4\n'
        '[[arms]]\nname = "ketamine"\nregimen = "0.5 mg/kg IV over 40 min"\n'
        '[[arms]]\nname = "midazolam"\ncontrol = "midazolam"\n'
        '[endpoint]\ninstrument = "madrs"\ntime = "24 h"\nmeasure = "response"\n',
        encoding="utf-8")
    ketasim = Path(sys.executable).with_name("ketasim")
    outs = []
    for w in ("1", "2"):
        r = subprocess.run([str(ketasim), "trial", str(path), "--replicates", "4", "--workers",
                            w, "--json"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data.pop("workers") == int(w)
        outs.append(data)
    assert outs[0] == outs[1]
    assert outs[0]["replicates"] == 4 and "ketamine - midazolam" in outs[0]["differences"]
    table = subprocess.run([str(ketasim), "trial", str(path), "--replicates", "3"],
                           capture_output=True, text=True, timeout=300)
    assert table.returncode == 0 and "replicate trials" in table.stdout


def test_help_and_the_cli_module_import_no_scale_library() -> None:
    from test_startup import modules_after
    scale = {"dask", "distributed", "pyarrow", "SALib"}
    assert not scale & modules_after("import ketasim.cli.app")
    assert not scale & modules_after(
        "import contextlib, io, sys\nsys.argv = ['ketasim', 'sensitivity', '--help']\n"
        "from ketasim.cli.app import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit:\n        pass")
