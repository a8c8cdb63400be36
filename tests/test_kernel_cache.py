"""The population kernel is compiled once, ever: cached on disk, keyed by what it computes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ketasim.engine import kernels
from ketasim.engine.kernels import cache_dir, kernel_key, kernel_path, kernel_source
from ketasim.engine.reference import reference_model
from ketasim.model import State

ROOT = Path(__file__).resolve().parent.parent

# one population run in a fresh interpreter; reports numba's cache statistics for the kernel
SCRIPT = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    from ketasim.engine import PopulationEngine
    from ketasim.engine.kernels import kernel_path
    from ketasim.engine.reference import REFERENCE_REGIMEN, reference_model
    outputs = ["c1", "plasticity"]
    model = reference_model()
    engine = PopulationEngine()
    r = engine.run(model, REFERENCE_REGIMEN, covariates={"weight": np.array([60.0, 90.0])},
                   times=np.arange(0.0, 100.0, 0.5), outputs=outputs, keep_states=False)
    seconds = time.perf_counter() - t0
    k = engine.kernel(model, outputs)
    print(json.dumps({
        "seconds": seconds, "hits": sum(k.stats.cache_hits.values()),
        "misses": sum(k.stats.cache_misses.values()), "path": str(kernel_path(model, outputs)),
        "plasticity": r["plasticity"].tolist(), "c1": r["c1"].tolist()}))
""")


def _run(env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _stamps(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_second_process_loads_the_kernel_instead_of_compiling(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    env["KETASIM_CACHE_DIR"] = str(tmp_path)
    first = _run(env)
    assert first["misses"] >= 1 and first["hits"] == 0  # compiled and stored
    kdir = tmp_path / "kernels"
    path = Path(first["path"])
    assert path.parent == kdir and path.is_file()
    assert list((kdir / "__pycache__").glob(f"{path.stem}.kernel-*.nbi"))
    before = _stamps(kdir)

    second = _run(env)
    assert second["misses"] == 0 and second["hits"] >= 1  # loaded, nothing compiled
    assert second["path"] == first["path"]
    assert _stamps(kdir) == before  # neither the module nor numba's index was rewritten
    assert second["plasticity"] == first["plasticity"] and second["c1"] == first["c1"]
    assert second["seconds"] < first["seconds"] / 2


def test_the_key_follows_structure_and_outputs_not_parameter_values() -> None:
    m = reference_model()
    key = kernel_key(m, ["c1", "plasticity"])
    assert key == kernel_key(reference_model(), ["c1", "plasticity"])  # a rebuilt model
    # other outputs, or the same in another order: another kernel
    assert kernel_key(m, ["c1"]) != key
    assert kernel_key(m, ["plasticity", "c1"]) != key
    # a changed equation: another kernel (never the stale one)
    changed = dataclasses.replace(m, states={"plasticity": State(
        "kout * s0 * (1 + smax * ce ** 2 / (sc50 ** 2 + ce ** 2)) - kout * plasticity",
        "s0", "", "indirect-response state")})
    assert kernel_key(changed, ["c1", "plasticity"]) != key
    assert "ce * ce" in kernel_source(changed, ["c1", "plasticity"])  # x ** 2 is x * x
    # typical values are inputs of the kernel, not part of it: the kernel is shared
    params = dict(m.parameters)
    params["cl"] = dataclasses.replace(params["cl"], value=95.0)
    assert kernel_key(dataclasses.replace(m, parameters=params), ["c1", "plasticity"]) == key


def test_the_key_includes_the_compiler_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    m = reference_model()
    key = kernel_key(m, ["c1"])
    monkeypatch.setattr(kernels, "_versions", lambda: "numba 0.0.0; llvmlite 0.0.0")
    assert kernel_key(m, ["c1"]) != key


def test_cache_location_follows_the_environment(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETASIM_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere" / "kernels"
    m = reference_model()
    assert kernel_path(m, ["c1"]) == (tmp_path / "elsewhere" / "kernels"
                                      / f"kernel_{kernel_key(m, ['c1'])}.py")
    monkeypatch.delenv("KETASIM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache_dir() == tmp_path / "xdg" / "ketasim" / "kernels"


def test_a_damaged_kernel_file_is_rewritten_and_clear_removes_everything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETASIM_CACHE_DIR", str(tmp_path))
    path = kernel_path(reference_model(), ["c1"])
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    kernels._write(path, "print('kernel')\n")
    assert path.read_text() == "print('kernel')\n"
    stamp = path.stat().st_mtime_ns
    kernels._write(path, "print('kernel')\n")  # identical text: left alone
    assert path.stat().st_mtime_ns == stamp
    (path.parent / "__pycache__").mkdir()
    (path.parent / "__pycache__" / f"{path.stem}.kernel-1.py311.nbi").write_text("x")
    assert kernels.clear_kernel_cache() == 1
    assert not path.exists() and not (path.parent / "__pycache__").exists()


def test_without_numba_the_fallback_says_so_once_and_agrees(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import json, sys, warnings
        sys.modules["numba"] = None  # as if numba were not installed
        import numpy as np
        from ketasim.engine import PopulationEngine
        from ketasim.engine.reference import reference_model
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            runs = [PopulationEngine().run(
                reference_model(), "0.5 mg/kg IV over 40 min", times=[0.5, 1.0, 4.0],
                covariates={"weight": np.array([70.0])}, outputs=["c1", "plasticity"])
                for _ in range(2)]
        msgs = [str(w.message) for w in caught if "numba" in str(w.message)]
        print(json.dumps({"messages": msgs, "s": runs[0]["plasticity"].tolist(),
                          "c1": runs[1]["c1"].tolist()}))
    """)
    env = {**os.environ, "KETASIM_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["messages"]) == 1 and "pip install" in out["messages"][0]
    from ketasim.engine import PopulationEngine
    ref = PopulationEngine().run(reference_model(), "0.5 mg/kg IV over 40 min",
                                 times=[0.5, 1.0, 4.0], covariates={"weight": np.array([70.0])},
                                 outputs=["c1", "plasticity"])
    assert np.allclose(out["s"], ref["plasticity"], rtol=1e-12, atol=0)
    assert np.allclose(out["c1"], ref["c1"], rtol=1e-12, atol=0)
