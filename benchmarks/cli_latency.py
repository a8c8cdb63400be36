"""Fresh-process latency of the command line (issue #16).

Each command runs in a new interpreter, as a user types it; the figures are the median wall
time of ``--repeats`` runs (stdout discarded) and the median CPU time (user + system) of the
process, which on a busy machine is the steadier estimate of the wall time on an idle one
(for the single-threaded commands). The population kernel cache is warmed first (the time of
that run is printed too: a cold compile when the cache was empty).

    python benchmarks/cli_latency.py                 # warm cache in the user cache dir
    python benchmarks/cli_latency.py --cold          # also: first run ever, in a fresh cache
    python benchmarks/cli_latency.py --repeats 9

Targets: ``--help`` < 0.3 s, ``regimen`` < 0.5 s, a first population result < 2 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REGIMEN = "0.5 mg/kg IV over 40 min"
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("ketasim --help", ["--help"], 0.3),
    (f'ketasim regimen "{REGIMEN}" --weight 70', ["regimen", REGIMEN, "--weight", "70"], 0.5),
    (f'ketasim regimen "{REGIMEN}" (no weight: listed per kg)', ["regimen", REGIMEN], 0.5),
    ("ketasim simulate, 1 subject", ["simulate", "--regimen", REGIMEN, "--weight", "70"], None),
    ("ketasim simulate, 1,000 subjects (warm cache)",
     ["simulate", "--regimen", REGIMEN, "--subjects", "1000", "--seed", "1"], None),
]


def ketasim_command() -> list[str]:
    """The installed ``ketasim`` script next to this interpreter, else ``python -m ketasim``."""
    script = Path(sys.executable).with_name("ketasim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ketasim"]


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh ``ketasim`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(ketasim_command() + args, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="kernel cache to use (KETASIM_CACHE_DIR); default: the user's")
    parser.add_argument("--cold", action="store_true",
                        help="also time the very first population run, in a fresh cache")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.cache_dir is not None:
        env["KETASIM_CACHE_DIR"] = str(args.cache_dir)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"{' '.join(ketasim_command())}; median of {args.repeats} fresh processes")
    population = COMMANDS[-1][1]
    if args.cold:
        fresh = tempfile.mkdtemp(prefix="ketasim-cold-")
        try:
            cold, _ = timed(population, {**env, "KETASIM_CACHE_DIR": fresh})
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
        print(f"{'first run ever (cold kernel cache), 1,000 subjects':<52} {cold:8.2f} s")
    warm_up, _ = timed(population, env)
    print(f"{'warm-up run (fills the cache if empty)':<52} {warm_up:8.2f} s")
    print(f"{'command':<52} {'wall s':>8} {'min':>6} {'CPU s':>7}")
    for label, cmd, target in COMMANDS:
        runs = [timed(cmd, env) for _ in range(args.repeats)]
        med = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        verdict = "" if target is None else (f"  target < {target:g} s: "
                                             + ("ok" if med < target else "missed"))
        print(f"{label:<52} {med:8.2f} {min(w for w, _ in runs):6.2f} {cpu:7.2f}{verdict}")


if __name__ == "__main__":
    main()
