"""docs/nonmem-users.md: its code blocks run, in order, in one namespace, from the repository
root, and print what the text says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_nonmem_users_guide_runs(capsys, monkeypatch) -> None:
    text = (ROOT / "docs" / "nonmem-users.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/nonmem-users.md", "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "('@',) 1"
    assert out[1] == "744 155 59"
    assert out[2] == "779 39" and out[3] == "[1, 2]"
    assert "Importance Sampling" in out[7]
    assert out[8].startswith("744 ['ID', 'TIME', 'AMT', 'WGT', 'APGR', 'IPRED']")
    assert float(out[9]) < 1e-4
