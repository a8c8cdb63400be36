"""Compiled population kernels, cached on disk: compile once, ever.

The population engine's kernel is generated per model structure and requested outputs: the
model's right-hand side and output functions are spliced into the kernel template
(:mod:`ketasim.engine._kernel_template`) and the whole module is written to the kernel cache
directory as ``kernel_<key>.py``, where ``<key>`` hashes the generated text together with the
numba, llvmlite, numpy and Python versions. numba compiles it with ``cache=True`` and stores
the machine code in ``__pycache__`` next to it, so the next process that asks for the same
kernel loads it in a fraction of a second instead of compiling for 10–20 s. A changed model,
other outputs, a new kernel template or a new numba is a new key, hence a new file: a stale
kernel is never reused.

The directory is ``$KETASIM_CACHE_DIR/kernels`` when that variable is set, otherwise the user
cache directory (``~/.cache/ketasim/kernels`` on Linux, ``~/Library/Caches/ketasim/kernels``
on macOS, ``%LOCALAPPDATA%\\ketasim\\Cache\\kernels`` on Windows). Deleting it, or calling
:func:`clear_kernel_cache`, is always safe.

>>> from ketasim.engine.reference import reference_model
>>> m = reference_model()
>>> kernel_key(m, ["c1"]) == kernel_key(m, ["c1"]) != kernel_key(m, ["c1", "plasticity"])
True
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ketasim.model.model import Model

CACHE_ENV = "KETASIM_CACHE_DIR"
_BEGIN = "# --- model functions (generated) ---\n"
_END = "# --- end model functions ---\n"
_START = "# --- kernel module ---\n"
# a fixed modification time for generated files, so that rewriting identical text never
# changes the (mtime, size) stamp older numba versions key their cache on
_STAMP = 1_262_304_000  # 2010-01-01

_lock = threading.Lock()
_loaded: dict[str, Any] = {}
_warned = False
_template: str | None = None


class NumbaMissingWarning(RuntimeWarning):
    """The population engine runs without its compiled kernel (numba is not importable)."""


def cache_dir() -> Path:
    """The kernel cache directory (created on first use by :func:`load_kernel`)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser() / "kernels"
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        root = base / "ketasim" / "Cache"
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "ketasim"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ketasim"
    return root / "kernels"


def have_numba() -> bool:
    """True when numba can be imported (the compiled fast path is available)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _versions() -> str:
    import numpy as np
    try:
        import llvmlite
        import numba
    except ImportError:
        return f"numba none; numpy {np.__version__}; python {sys.version.split()[0]}"
    return (f"numba {numba.__version__}; llvmlite {llvmlite.__version__}; numpy "
            f"{np.__version__}; python {sys.version.split()[0]}; {sys.platform}")


def _template_text() -> str:
    global _template
    if _template is None:
        text = Path(__file__).with_name("_kernel_template.py").read_text(encoding="utf-8")
        _template = text[text.index(_START) + len(_START):]
    return _template


def kernel_source(model: Model, outputs: Sequence[str]) -> str:
    """The generated module for ``model`` and ``outputs`` (without its header)."""
    template = _template_text()
    head, rest = template.split(_BEGIN)
    _, tail = rest.split(_END)
    nl = model.rhs_source("nl_rhs", nonlinear_only=True)
    out = model.output_source(list(outputs), "outputs")
    body = (f"@njit(cache=True)\n{nl}\n\n"
            f"@njit(cache=True, fastmath=True)\n{out}")
    return f"{head}{_BEGIN}{body}{_END}{tail}"


def kernel_key(model: Model, outputs: Sequence[str]) -> str:
    """Hash of the generated kernel source and the compiler versions (the cache key)."""
    text = kernel_source(model, outputs) + "\n" + _versions()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def kernel_path(model: Model, outputs: Sequence[str]) -> Path:
    """Where the generated module for ``model`` and ``outputs`` lives in the cache."""
    return cache_dir() / f"kernel_{kernel_key(model, outputs)}.py"


def _writable(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe-{os.getpid()}-{threading.get_ident()}"
        probe.write_bytes(b"")
        probe.unlink()
        return directory
    except OSError:
        user = os.environ.get("USER") or os.environ.get("USERNAME") or "user"
        fallback = Path(tempfile.gettempdir()) / f"ketasim-{user}" / "kernels"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, unless it is already there."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.utime(tmp, (_STAMP, _STAMP))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _warn_missing_numba() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("numba is not importable, so ketasim's population engine runs its kernel "
                      "as plain Python, about 100x slower. Install the compiled fast path "
                      "with: pip install 'numba>=0.59,<1'", NumbaMissingWarning, stacklevel=3)


def load_kernel(model: Model, outputs: Sequence[str]) -> Any:
    """The compiled kernel for ``model`` and ``outputs``: from this process, from the disk
    cache (numba loads the stored machine code), or generated and compiled on first use."""
    text = kernel_source(model, outputs)
    versions = _versions()
    key = hashlib.sha256((text + "\n" + versions).encode("utf-8")).hexdigest()[:24]
    with _lock:
        kernel = _loaded.get(key)
        if kernel is not None:
            return kernel
        if versions.startswith("numba none"):
            _warn_missing_numba()
        directory = _writable(cache_dir())
        path = directory / f"kernel_{key}.py"
        header = f"# Generated by ketasim.engine.kernels. Key {key}: {versions}. Safe to delete.\n"
        _write(path, header + text)
        name = f"ketasim_kernel_{key}"
        module = sys.modules.get(name)
        if module is None:
            module = _import(name, path)
        kernel = module.kernel
        _loaded[key] = kernel
        return kernel


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def clear_kernel_cache() -> int:
    """Delete every cached kernel (generated modules and numba's machine code); returns the
    number of generated modules removed. Kernels already loaded in this process stay."""
    directory = cache_dir()
    if not directory.is_dir():
        return 0
    removed = 0
    for f in directory.glob("kernel_*.py"):
        f.unlink(missing_ok=True)
        removed += 1
    shutil.rmtree(directory / "__pycache__", ignore_errors=True)
    return removed


__all__ = ["CACHE_ENV", "NumbaMissingWarning", "cache_dir", "clear_kernel_cache",
           "have_numba", "kernel_key", "kernel_path", "kernel_source", "load_kernel"]
