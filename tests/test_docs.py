"""Every public symbol is documented, and the docstring examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import ketasim

MODULES = sorted(m.name for m in pkgutil.walk_packages(ketasim.__path__, "ketasim.")
                 if not m.name.endswith("__main__"))


def test_public_api_is_documented() -> None:
    missing = []
    for name in ketasim.__all__:
        obj = getattr(ketasim, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                if not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    assert not missing, f"undocumented public symbols: {missing}"


@pytest.mark.parametrize("module", MODULES)
def test_module_docstrings_and_examples(module: str) -> None:
    mod = importlib.import_module(module)
    assert inspect.getdoc(mod), f"{module} has no module docstring"
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
