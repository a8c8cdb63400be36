"""The tutorial's code blocks run, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_tutorial_runs(capsys) -> None:
    text = (ROOT / "docs" / "tutorial.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/tutorial.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "perez_ruixo_2021" in out and "reached: ['nmda']" in out
    assert "phq9_item9_positive" in out
