"""Safe model expressions: parsed with :mod:`ast`, checked, and turned into Python source.

Model equations are written as short arithmetic strings (``"cl / v1"``,
``"emax * ce**hill / (ec50**hill + ce**hill)"``), as mrgsolve and rxode2 users write them.
Only numbers, names, ``+ - * / **``, comparisons, and the functions in :data:`FUNCTIONS` are
allowed, so a model file cannot run arbitrary code. The same text is evaluated vectorised
with numpy and compiled to scalar code for the ODE and population engines.

>>> e = Expression.parse("cl / v1 * exp(-k * t)", field="rate")
>>> sorted(e.names)
['cl', 'k', 't', 'v1']
>>> import numpy as np
>>> float(e.evaluate({"cl": 2.0, "v1": 4.0, "k": 0.0, "t": 1.0}))
0.5
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ketasim.errors import ModelError

# name -> (numpy implementation, scalar source used in generated code)
FUNCTIONS: dict[str, tuple[Any, str]] = {
    "exp": (np.exp, "math.exp"),
    "log": (np.log, "math.log"),
    "log10": (np.log10, "math.log10"),
    "sqrt": (np.sqrt, "math.sqrt"),
    "abs": (np.abs, "abs"),
    "min": (np.minimum, "min"),
    "max": (np.maximum, "max"),
    "where": (np.where, "_where"),
}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


def _where(cond: bool, a: float, b: float) -> float:
    return a if cond else b


@dataclass(frozen=True)
class Expression:
    """A checked arithmetic expression over named quantities."""

    text: str
    names: frozenset[str]
    source: str  # scalar Python source (math.* functions)
    _code: Any

    @classmethod
    def parse(cls, text: str | float, *, field: str) -> Expression:
        """Parse ``text`` (or a number); raise :class:`ModelError` naming ``field`` if unsafe."""
        if isinstance(text, int | float):
            if not math.isfinite(float(text)):
                raise ModelError(field, f"{text!r} is not finite", "give a finite number")
            text = repr(float(text))
        if not isinstance(text, str) or not text.strip():
            raise ModelError(field, "empty expression", "write an expression such as 'cl / v'")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ModelError(field, f"cannot parse {text!r}: {exc.msg}",
                             "use numbers, names, + - * / ** and exp/log/sqrt/min/max/where"
                             ) from exc
        names: set[str] = set()
        source = _emit(tree.body, names, field, text)
        np_tree = ast.Expression(body=tree.body)
        code = compile(np_tree, f"<{field}>", "eval")
        return cls(text.strip(), frozenset(names), source, code)

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Evaluate with numpy semantics (arrays broadcast)."""
        env: dict[str, Any] = {k: v for k, v in values.items() if k in self.names}
        for name in self.names:
            if name not in env:
                raise ModelError(name, f"is not defined when evaluating {self.text!r}",
                                 "define it as a parameter, covariate, compartment or state")
        env.update({k: f for k, (f, _) in FUNCTIONS.items()})
        with np.errstate(all="ignore"):
            return eval(self._code, {"__builtins__": {}}, env)


def _emit(node: ast.AST, names: set[str], field: str, text: str) -> str:
    def bad(what: str) -> ModelError:
        return ModelError(field, f"{what} is not allowed in {text!r}",
                          "use numbers, names, + - * / **, comparisons and "
                          + ", ".join(sorted(FUNCTIONS)))

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise bad(f"the constant {node.value!r}")
        return repr(float(node.value))
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise bad(f"the function name {node.id!r} without a call")
        if node.id.startswith("_"):
            raise bad(f"the name {node.id!r}")
        names.add(node.id)
        return node.id
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return (f"({_emit(node.left, names, field, text)} {_BINOPS[type(node.op)]} "
                f"{_emit(node.right, names, field, text)})")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        return f"({sign}{_emit(node.operand, names, field, text)})"
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
        return (f"({_emit(node.left, names, field, text)} {_CMPOPS[type(node.ops[0])]} "
                f"{_emit(node.comparators[0], names, field, text)})")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in FUNCTIONS and not node.keywords:
        n_args = {"where": 3, "min": 2, "max": 2}.get(node.func.id, 1)
        if len(node.args) != n_args:
            raise bad(f"{node.func.id}() with {len(node.args)} arguments (needs {n_args})")
        args = ", ".join(_emit(a, names, field, text) for a in node.args)
        return f"{FUNCTIONS[node.func.id][1]}({args})"
    raise bad(type(node).__name__)


def topological_order(definitions: Mapping[str, Expression], known: set[str]) -> list[str]:
    """Order ``definitions`` so each comes after those it uses; reject cycles and unknowns."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ModelError(name, "is defined in terms of itself: " + " -> ".join((*chain, name)),
                             "break the cycle in the definitions")
        state[name] = 1
        for dep in definitions[name].names:
            if dep in definitions:
                visit(dep, (*chain, name))
            elif dep not in known:
                raise ModelError(name, f"uses {dep!r}, which is not defined",
                                 "define it as a parameter, covariate, compartment, state or "
                                 "definition")
        state[name] = 2
        order.append(name)

    for name in definitions:
        visit(name, ())
    return order


__all__ = ["FUNCTIONS", "Expression", "topological_order"]
