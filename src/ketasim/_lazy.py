"""Lazy package exports: a name is imported from its module on first access.

Packages list what they re-export and from where; importing the package itself then costs
nothing, so ``ketasim --help`` does not pay for pint, pandas, scipy or matplotlib.

>>> import ketasim
>>> ketasim.Route.IV_BOLUS.value
'iv_bolus'
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


class _LazyPackage(ModuleType):
    """A package whose exported names win over same-named submodules.

    Importing a submodule records it on its package (``ketasim.engine.simulate``, the module);
    with eager re-exports the function of that name is bound afterwards and wins. Here the
    export may be resolved later, so the submodule is not recorded under an exported name
    that it defines (it stays in ``sys.modules``)."""

    _lazy_exports: Mapping[str, str] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if (isinstance(value, ModuleType) and self._lazy_exports.get(name) == value.__name__
                and value.__name__ == f"{self.__name__}.{name}"):
            return
        super().__setattr__(name, value)


def _is_submodule(fullname: str) -> bool:
    try:
        return importlib.util.find_spec(fullname) is not None
    except (ImportError, ValueError):
        return False


def attach(package: str, exports: Mapping[str, str]
           ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package`` re-exporting ``exports``
    (name → module that defines it)."""
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    module._lazy_exports = dict(exports)  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            # a submodule, as ``package.submodule`` after ``import package`` used to work
            # when the package imported its submodules eagerly
            if not name.startswith("__") and _is_submodule(f"{package}.{name}"):
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__


__all__ = ["attach"]
