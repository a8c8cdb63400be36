"""Run a document's ``python`` code blocks, in order, in one namespace, from the repository
root (the docs' worked examples are tests)."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python_blocks(doc: str) -> int:
    """Execute every ```python block of ``doc`` (a path below the repository root); returns
    how many ran. Output goes to stdout, for the caller's ``capsys``."""
    text = (ROOT / doc).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict[str, object] = {}
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        for block in blocks:
            exec(compile(block, doc, "exec"), namespace)
    finally:
        os.chdir(here)
    return len(blocks)
