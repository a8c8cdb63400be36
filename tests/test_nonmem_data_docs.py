"""docs/nonmem-users.md: its code blocks run, in order, in one namespace, from the repository
root, and print what the text says."""

from __future__ import annotations

from doc_blocks import run_python_blocks


def test_nonmem_users_guide_runs(capsys) -> None:
    assert run_python_blocks("docs/nonmem-users.md") == 5
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "('@',) 1"
    assert out[1] == "744 155 59"
    assert out[2] == "779 39" and out[3] == "[1, 2]"
    assert "Importance Sampling" in out[7]
    assert out[8].startswith("744 ['ID', 'TIME', 'AMT', 'WGT', 'APGR', 'IPRED']")
    assert float(out[9]) < 1e-4
