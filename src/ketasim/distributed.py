"""Runs beyond one process: Dask clusters, blocks of work in order, seeds per block.

Large runs are cut into **blocks** (of subjects, replicate trials or sensitivity draws) that
are computed independently, locally or on a Dask cluster, and come back in block order. A
block's randomness comes from ``numpy.random.SeedSequence(seed)`` spawned by the *block
index* (:func:`block_seed`), never from the worker that computes it, so a result is the same
bit for bit whatever the number of workers (on identical software and CPUs; compiled kernels
built for other CPUs may differ in the last bits). See docs/scale.md.

>>> block_seed(7, 0), block_seed(7, 1) == block_seed(7, 1), block_seed(7, 1) == block_seed(7, 2)
(7, True, False)
>>> list(map_blocks(pow, [(2, 3), (3, 2)]))
[8, 9]

Dask, pyarrow and SALib are the ``scale`` extra (``pip install 'ketasim[scale]'``); they are
imported only when a run needs them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from ketasim.errors import KetasimError

EXTRA = "pip install 'ketasim[scale]'"


class ScaleError(KetasimError):
    """A run at scale that cannot start: a missing optional library, a cluster that cannot be
    reached, too little disk."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (part of the ``scale`` extra) or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ScaleError(module.split(".")[0], f"is not installed ({purpose} needs it)",
                         EXTRA) from None


def block_seed(seed: int, block: int) -> int:
    """The integer seed of ``block``: ``seed`` itself for block 0 (so a run that fits in one
    block is the plain seeded run), else the ``block``-th child of ``SeedSequence(seed)``."""
    if block < 0:
        raise KetasimError("block", f"is {block}", "blocks are numbered from 0")
    if block == 0:
        return int(seed)
    import numpy as np
    child = np.random.SeedSequence(int(seed), spawn_key=(int(block),))
    return int(child.generate_state(1, np.uint64)[0])


def fresh_seed() -> int:
    """A new random seed (128-bit entropy) to record when the user gave none."""
    import numpy as np
    return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]


def n_blocks(total: int, size: int) -> int:
    """How many blocks of ``size`` hold ``total`` items."""
    return max(1, -(-int(total) // int(size)))


@contextmanager
def cluster(scheduler: str | None = None, workers: int | None = None, *,
            threads_per_worker: int = 1) -> Iterator[Any]:
    """A ``dask.distributed.Client``: connected to ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``), or to a new local cluster of ``workers`` processes; ``None``
    when neither is given (then work runs in this process). Local workers get
    ``NUMBA_NUM_THREADS`` = cores / workers so the compiled kernels do not oversubscribe."""
    if scheduler is not None and workers is not None:
        raise ScaleError("workers", "--workers starts a local cluster, --scheduler uses an "
                         "existing one", "give one of them")
    if scheduler is None and workers is None:
        yield None
        return
    dist = require("dask.distributed", "running on a Dask cluster")
    if scheduler is not None:
        try:
            client = dist.Client(scheduler, timeout="10s")
        except OSError as exc:
            raise ScaleError("scheduler", f"cannot reach {scheduler} ({exc})",
                             "start one with 'dask scheduler' and give its address, e.g. "
                             "tcp://HOST:8786") from None
        try:
            yield client
        finally:
            client.close()
        return
    assert workers is not None
    if workers < 1:
        raise ScaleError("workers", f"is {workers}", "start at least one worker")
    cores = os.cpu_count() or 1
    threads = str(max(1, cores // workers))
    lc = dist.LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                           processes=True, dashboard_address=None, silence_logs=40,
                           env={"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": "1"})
    client = dist.Client(lc)
    try:
        yield client
    finally:
        client.close()
        lc.close()


def n_workers(client: Any) -> int:
    """Workers of ``client``'s cluster (1 without a client)."""
    if client is None:
        return 1
    return max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))


def _guarded(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """Run on a worker: a ketasim error travels back as its class and fields (its pickled
    form would not rebuild: the constructor takes field, problem and fix)."""
    try:
        return ("ok", fn(*args))
    except KetasimError as exc:
        return ("error", type(exc), exc.field, exc.problem, exc.fix)


def _unwrap(result: tuple[Any, ...]) -> Any:
    if result[0] == "ok":
        return result[1]
    _, cls, field, problem, fix = result
    raise cls(field, problem, fix)


def map_blocks(fn: Callable[..., Any], blocks: Iterable[Sequence[Any]], *,
               client: Any = None, max_in_flight: int | None = None) -> Iterator[Any]:
    """``fn(*args)`` for each ``args`` of ``blocks``, yielded in block order.

    Without a client they run here, one after another. With one, at most ``max_in_flight``
    (default: 2 per worker) are submitted at a time and finished blocks wait until those
    before them are yielded, so memory stays bounded by a few blocks' results whatever the
    run's size."""
    if client is None:
        for args in blocks:
            yield fn(*args)
        return
    dist = require("dask.distributed", "running on a Dask cluster")
    limit = max_in_flight or 2 * n_workers(client)
    it = iter(blocks)
    pending: dict[Any, int] = {}
    done: dict[int, Any] = {}
    submitted = 0
    nxt = 0
    queue = dist.as_completed()

    def submit() -> bool:
        nonlocal submitted
        try:
            args = next(it)
        except StopIteration:
            return False
        fut = client.submit(_guarded, fn, *args, pure=False)
        pending[fut] = submitted
        queue.add(fut)
        submitted += 1
        return True

    more = True
    while more and len(pending) < limit:
        more = submit()
    for fut in queue:
        k = pending.pop(fut)
        done[k] = _unwrap(fut.result())
        fut.release()
        while nxt in done:
            yield done.pop(nxt)
            nxt += 1
        while more and len(pending) + len(done) < limit:
            more = submit()
    while nxt in done:  # pragma: no cover - every block is yielded in the loop above
        yield done.pop(nxt)
        nxt += 1


__all__ = ["EXTRA", "ScaleError", "block_seed", "cluster", "fresh_seed", "map_blocks",
           "n_blocks", "n_workers", "require"]
