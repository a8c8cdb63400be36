"""Streaming population PK runs to Parquet (ketasim.population.stream): the file holds what
the in-memory run computes, blocks are seeded by their index, a disk too small is refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pq = pytest.importorskip("pyarrow.parquet")

from ketasim.distributed import block_seed  # noqa: E402
from ketasim.population import run_pk  # noqa: E402
from ketasim.population.stream import (  # noqa: E402
    DiskSpaceError,
    plan_stream,
    stream_pk,
    write_stream,
)

REGIMEN = "0.5 mg/kg IV over 40 min"
TIMES = np.arange(0.0, 6.0 + 1e-9, 0.25)
KETASIM = Path(sys.executable).with_name("ketasim")


def test_metrics_file_equals_the_in_memory_run(tmp_path: Path) -> None:
    res = stream_pk(REGIMEN, path=tmp_path / "m.parquet", subjects=40, seed=3, times=TIMES,
                    threshold=50.0)
    table = pq.read_table(res.path)
    ref = run_pk(REGIMEN, subjects=40, seed=3, times=TIMES)
    assert table.column("subject").to_pylist() == list(range(1, 41))
    for k, v in {**ref.population.covariates, **ref.population.parameters}.items():
        assert np.array_equal(table.column(k).to_numpy(), v), k
    for a, vals in ref.metrics().items():
        for k, v in vals.items():
            assert np.array_equal(table.column(f"{a}_{k}").to_numpy(), v), (a, k)
        c = ref.concentration(a, "ng/mL")
        from ketasim.population.metrics import time_above
        assert np.array_equal(table.column(f"{a}_time_above_h").to_numpy(),
                              time_above(TIMES, c, 50.0))
    meta = table.schema.metadata
    assert meta[b"ketasim.seed"] == b"3" and meta[b"ketasim.kind"] == b"metrics"
    assert table.schema.field("weight").metadata[b"unit"] == b"kg"
    assert res.rows == 40 and res.bytes == res.path.stat().st_size
    assert not list(tmp_path.glob("*.partial"))


def test_profiles_file_equals_the_in_memory_run(tmp_path: Path) -> None:
    res = stream_pk(REGIMEN, path=tmp_path / "p.parquet", subjects=12, seed=8, times=TIMES,
                    profiles=True, analytes=["ketamine", "norketamine"], chunk_size=5)
    table = pq.read_table(res.path)
    assert table.column_names == ["subject", "time_h", "ketamine_ng_per_ml",
                                  "norketamine_ng_per_ml"]
    nt = len(TIMES)
    assert table.num_rows == 12 * nt
    assert np.array_equal(table.column("subject").to_numpy(), np.repeat(np.arange(1, 13), nt))
    assert np.array_equal(table.column("time_h").to_numpy(), np.tile(TIMES, 12))
    ref = run_pk(REGIMEN, subjects=12, seed=8, times=TIMES)
    for a in ("ketamine", "norketamine"):
        got = table.column(f"{a}_ng_per_ml").to_numpy().reshape(12, nt)
        assert np.array_equal(got, ref.concentration(a, "ng/mL"))
    # row groups are engine chunks: 5 + 5 + 2 subjects
    assert pq.ParquetFile(res.path).metadata.num_row_groups == 3


def test_blocks_are_seeded_by_their_index_whatever_the_chunk_size(tmp_path: Path) -> None:
    # 15 subjects in blocks of 7: 7 + 7 + 1 (a lone subject is still a random patient)
    files = []
    for chunk in (3, 50):
        job = plan_stream(REGIMEN, path=tmp_path / f"b{chunk}.parquet", subjects=15, seed=5,
                          times=TIMES, block_subjects=7, chunk_size=chunk)
        files.append(write_stream(job).path)
    assert files[0].read_bytes() == files[1].read_bytes()
    table = pq.read_table(files[0])
    assert table.column("subject").to_pylist() == list(range(1, 16))
    for k, (a, b) in enumerate([(0, 7), (7, 14), (14, 15)]):
        ref = run_pk(REGIMEN, subjects=max(b - a, 2), seed=block_seed(5, k), times=TIMES)
        cmax = ref.metrics()["ketamine"]["cmax_ng_per_ml"][: b - a]
        assert np.array_equal(table.column("ketamine_cmax_ng_per_ml").to_numpy()[a:b], cmax)
    assert table.column("eta_cl").to_numpy()[14] != 0.0


def test_a_disk_too_small_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.disk_usage

    def tiny(path: object) -> object:
        usage = real(path)  # type: ignore[arg-type]
        return type(usage)(usage.total, usage.total - 10_000_000, 10_000_000)
    monkeypatch.setattr(shutil, "disk_usage", tiny)
    target = tmp_path / "big.parquet"
    with pytest.raises(DiskSpaceError, match=r"needs about .* but only 10 MB is free"):
        plan_stream(REGIMEN, path=target, subjects=1_000_000, seed=1, times=TIMES)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_a_failed_run_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ketasim.population.stream as stream
    job = plan_stream(REGIMEN, path=tmp_path / "x.parquet", subjects=20, seed=1, times=TIMES,
                      block_subjects=10)
    real = stream._chunk_table
    calls = []

    def failing(*args: object, **kw: object) -> object:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk went away")
        return real(*args, **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(stream, "_chunk_table", failing)
    with pytest.raises(RuntimeError):
        write_stream(job)
    assert not list(tmp_path.iterdir())


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KETASIM), *args], capture_output=True, text=True, timeout=300)


def test_cli_streams_to_parquet_and_refuses_with_one_line(tmp_path: Path) -> None:
    assert KETASIM.exists(), "the ketasim entry point is installed with the package"
    target = tmp_path / "cli.parquet"
    ok = run_cli("simulate", "--regimen", REGIMEN, "--subjects", "30", "--seed", "2",
                 "--until", "6h", "--every", "30min", "--threshold", "100", "--analyte",
                 "ketamine", "--parquet", str(target))
    assert ok.returncode == 0, ok.stderr
    assert "about" in ok.stdout and "wrote" in ok.stdout
    table = pq.read_table(target)
    assert table.num_rows == 30 and "ketamine_time_above_h" in table.column_names
    ref = run_pk(REGIMEN, subjects=30, seed=2, times=np.arange(0.0, 6.0 + 1e-9, 0.5))
    assert np.array_equal(table.column("ketamine_cmax_ng_per_ml").to_numpy(),
                          ref.metrics()["ketamine"]["cmax_ng_per_ml"])
    # 10^8 profiles every minute for 1000 h do not fit any disk: refused, one line, exit 2
    big = run_cli("simulate", "--regimen", REGIMEN, "--subjects", "100000000", "--profiles",
                  "--until", "1000h", "--every", "1min", "--parquet", str(tmp_path / "b.pq"))
    assert big.returncode == 2
    assert big.stderr.strip().count("\n") == 0 and "free" in big.stderr
    assert not (tmp_path / "b.pq").exists()
    nopq = run_cli("simulate", "--regimen", REGIMEN, "--subjects", "2000000")
    assert nopq.returncode == 2 and "--parquet" in nopq.stderr


# A metrics run in its own process; prints its peak resident memory (kB, Linux ru_maxrss).
# ``patch`` replaces the engine's ODE fallback method (a diagnosis aid, see below).
_MEMORY_RUN = """
import resource, sys
from pathlib import Path
import numpy as np
n, path, patch = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if patch != "none":
    import ketasim.engine.ode as ode
    base = ode.OdeEngine
    ode.OdeEngine = lambda *a, **k: base(*a, **{"method": patch, **k})
from ketasim.population.stream import plan_stream, write_stream
job = plan_stream("0.5 mg/kg IV over 40 min", path=path, subjects=n, seed=16,
                  threshold=100.0, analytes=["ketamine", "norketamine", "hnk"])
write_stream(job)
import gc
gc.collect()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, sys.getallocatedblocks())
"""
SMALL, LARGE = 30_000, 70_000  # three and seven blocks (BLOCK_SUBJECTS = 10,000)
GROWTH_BOUND_MB = 15.0  # peak, for 40,000 more subjects: 0.4 kB per subject
BLOCKS_BOUND = 2_500  # Python objects left alive (sys.getallocatedblocks) for 40,000 more


def memory_growth(tmp_path: Path, patch: str = "none") -> tuple[float, int]:
    """(peak MB, live Python allocations) of a LARGE-subject run minus a SMALL one."""
    out = []
    for n in (SMALL, LARGE):
        r = subprocess.run([sys.executable, "-c", _MEMORY_RUN, str(n),
                            str(tmp_path / f"m{n}.parquet"), patch],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        peak_kb, blocks = map(int, r.stdout.split()[-2:])
        out.append((peak_kb / 1024.0, blocks))
    return out[1][0] - out[0][0], out[1][1] - out[0][1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in kB on Linux")
def test_metrics_stream_memory_does_not_grow_with_subjects(tmp_path: Path) -> None:
    # a 5-min-grid metrics run of 70,000 subjects against one of 30,000 (past the first
    # blocks' warm-up): the engine's buffers, one block's population and one block's table
    # are the same size in both, so the difference is what accumulates per block. Measured
    # (2 shared cores, ~25-35 s): with the leak +28 MB peak and +4,600 live allocations;
    # with the fallback on Radau instead (memory_growth(tmp_path, "Radau"), the leak gone)
    # -1 to +3 MB and +25 to +330
    growth_mb, blocks = memory_growth(tmp_path)
    assert growth_mb < GROWTH_BOUND_MB, f"peak grew by {growth_mb:.1f} MB for 40,000 subjects"
    assert blocks < BLOCKS_BOUND, f"{blocks} more Python allocations alive"
