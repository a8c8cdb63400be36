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

import ast
import hashlib
import importlib.util
import math
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, cast

if TYPE_CHECKING:
    import numpy as np

    from ketasim.model.expr import Expression
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
    return f"{head}{_BEGIN}{lane_code(model, outputs).source}{_END}{tail}"


def lane_functions(model: Model, outputs: Sequence[str]) -> str:
    """Source of the model's nonlinear right-hand side ``nl_rhs(t, a, s, p, ds, nl)`` and
    output function ``outputs(t, y, p, o, nl)`` over lanes (:func:`lane_code`).

    >>> from ketasim.engine.reference import reference_model
    >>> "_pow(ce, hill)" in lane_functions(reference_model(), ["effect"])
    True
    """
    return lane_code(model, outputs).source


@dataclass(frozen=True)
class LaneCode:
    """Generated lane functions and the per-subject values they read beyond the model's
    individual values: ``hoisted[i]`` (numpy source over those values) is column
    ``len(ind_order) + i`` of ``p``."""

    source: str
    hoisted: tuple[str, ...]


def lane_code(model: Model, outputs: Sequence[str]) -> LaneCode:
    """The model's right-hand side and output functions over subject lanes.

    Every argument but ``t`` is an array whose last axis is the lane, and each function loops
    over the first ``nl`` lanes, so that it compiles to SIMD code. ``exp``, ``log`` and ``**``
    call the kernel template's branch-free versions (``x ** 2`` is ``x * x``, ``x ** 0.5`` a
    square root). Costly parts that depend on individual values only (``ec50 ** hill``) are
    *hoisted*: computed once per subject (:func:`hoisted_values`) and read from ``p``; costly
    parts repeated within a function are computed once per lane.

    >>> from ketasim.engine.reference import reference_model
    >>> code = lane_code(reference_model(), ["effect"])
    >>> code.hoisted
    ('ec50 ** hill',)
    >>> "_t0 = _pow(ce, hill)" in code.source
    True
    """
    key = (model.fingerprint, tuple(outputs))
    code = _lane_codes.get(key)
    if code is None:
        code = _lane_codes[key] = _generate(model, outputs)
    return code


_lane_codes: dict[tuple[str, tuple[str, ...]], LaneCode] = {}


def _generate(model: Model, outputs: Sequence[str]) -> LaneCode:
    c = model.compiled
    n = model.n_cmt
    ind = set(c.ind_order)
    hoisted: dict[str, int] = {}

    def body(target: str, results: list[Expression], amounts: str, states: str,
             everything: str | None) -> list[str]:
        lines = [(k, _hoist(ast.parse(c.defs[k].source, mode="eval").body, ind, hoisted))
                 for k in c.state_defs]
        lines += [(f"{target}[{j}, _l]",
                   _hoist(ast.parse(e.source, mode="eval").body, ind, hoisted))
                  for j, e in enumerate(results)]
        used: set[str] = set()
        for _, tree in lines:
            used |= {x.id for x in ast.walk(tree) if isinstance(x, ast.Name)}
        out = ["    for _l in range(_nl):"]
        for i, k in enumerate(c.ind_order):
            if k in used:
                out.append(f"        {k} = _p[{i}, _l]")
        for i, k in enumerate(c.cmt_names):
            if k in used:
                out.append(f"        {k} = {everything or amounts}[{i}, _l]")
        for j, k in enumerate(model.states):
            if k in used:
                out.append(f"        {k} = {everything or states}"
                           f"[{n + j if everything else j}, _l]")
        for i in hoisted.values():
            if f"_h{i}" in used:
                out.append(f"        _h{i} = _p[{len(c.ind_order) + i}, _l]")
        out += [f"        {line}" for line in _common_subexpressions(lines)]
        if len(out) == 1:
            out.append("        pass")
        out.append("    return 0")
        return out

    rhs = [c.state_rhs[k] for k in model.states]
    outs = [c.outputs[k] for k in outputs]
    text = "\n".join([
        f"_NQ = {n}", "", "",
        "@njit(cache=True, error_model=\"numpy\", fastmath=_FM, inline=\"always\")",
        "def nl_rhs(t, _a, _s, _p, _ds, _nl):",
        *body("_ds", rhs, "_a", "_s", None), "", "",
        "@njit(cache=True, error_model=\"numpy\", fastmath=_FM, inline=\"always\")",
        "def outputs(t, _y, _p, _o, _nl):",
        *body("_o", outs, "", "", "_y")]) + "\n"
    order = sorted(hoisted, key=hoisted.__getitem__)
    return LaneCode(text, tuple(order))


def hoisted_values(code: LaneCode, ind: Mapping[str, Any], n: int) -> np.ndarray:
    """The hoisted per-subject values of ``code`` from individual values ``ind``: (n, k)."""
    import numpy as np
    env: dict[str, Any] = {"math": SimpleNamespace(exp=np.exp, log=np.log, log10=np.log10,
                                                   sqrt=np.sqrt),
                           "_where": np.where, "abs": np.abs, "min": np.minimum,
                           "max": np.maximum}
    env.update(ind)
    cols = []
    with np.errstate(all="ignore"):
        for src in code.hoisted:
            value = eval(src, {"__builtins__": {}}, env)  # generated from checked expressions
            cols.append(np.broadcast_to(np.asarray(value, dtype=float), (n,)))
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0))


def _costly(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) or (isinstance(node, ast.BinOp)
                                          and isinstance(node.op, ast.Pow))


def _hoist(tree: ast.expr, ind: set[str], hoisted: dict[str, int]) -> ast.expr:
    """Replace the largest costly subtrees of ``tree`` that read individual values only by
    names ``_h<i>`` (numbered in ``hoisted``)."""

    class Hoist(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> ast.AST:
            if _costly(node):
                names = {x.id for x in ast.walk(node) if isinstance(x, ast.Name)} - {"math"}
                calls = {x.func.id for x in ast.walk(node)
                         if isinstance(x, ast.Call) and isinstance(x.func, ast.Name)}
                if names - calls and (names - calls) <= ind:
                    key = ast.unparse(node)
                    i = hoisted.setdefault(key, len(hoisted))
                    return ast.Name(f"_h{i}", ast.Load())
            return self.generic_visit(node)

    return cast(ast.expr, Hoist().visit(tree))


def _common_subexpressions(lines: list[tuple[str, ast.expr]]) -> list[str]:
    """Assignments for ``lines`` (target, expression), with every costly subexpression that
    occurs more than once computed once, into ``_t<i>``, just before its first use."""
    counts: dict[str, int] = {}
    for _, tree in lines:
        for node in ast.walk(tree):
            if _costly(node):
                key = ast.dump(node)
                counts[key] = counts.get(key, 0) + 1
    temps: dict[str, str] = {}
    out: list[str] = []

    class Replace(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> ast.AST:
            node = self.generic_visit(node)  # inner repeats first, so temps nest
            if _costly(node):
                key = ast.dump(node)
                if counts.get(key, 0) > 1:
                    if key not in temps:
                        temps[key] = f"_t{len(temps)}"
                        out.append(f"{temps[key]} = {_vector_source(node)}")
                    return ast.Name(temps[key], ast.Load())
            return node

    for target, tree in lines:
        expr = Replace().visit(tree)
        out.append(f"{target} = {_vector_source(expr)}")
    return out


class _VectorCalls(ast.NodeTransformer):
    """``**``, ``math.exp``, ``math.log`` and ``math.log10`` to the kernel's vector forms."""

    _CALLS: ClassVar[dict[str, str]] = {"exp": "_exp", "log": "_log", "log10": "_log10"}

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Pow):
            return node
        try:
            power = float(ast.literal_eval(node.right))
        except (ValueError, TypeError, SyntaxError):  # not a number
            power = math.nan
        if power == 1.0:
            return node.left
        if power == 2.0:
            return ast.BinOp(node.left, ast.Mult(), node.left)
        if power == 0.5:
            return ast.Call(ast.Attribute(ast.Name("math", ast.Load()), "sqrt", ast.Load()),
                            [node.left], [])
        return ast.Call(ast.Name("_pow", ast.Load()), [node.left, node.right], [])

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                and f.value.id == "math" and f.attr in self._CALLS:
            node.func = ast.Name(self._CALLS[f.attr], ast.Load())
        return node


def _vector_source(tree: ast.AST) -> str:
    import copy
    out = _VectorCalls().visit(copy.deepcopy(tree))
    return ast.unparse(ast.fix_missing_locations(out))



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


__all__ = ["CACHE_ENV", "LaneCode", "NumbaMissingWarning", "cache_dir", "clear_kernel_cache",
           "have_numba", "hoisted_values", "kernel_key", "kernel_path", "kernel_source",
           "lane_code", "lane_functions", "load_kernel"]
