"""The tutorial's code blocks run, in order, in one namespace."""

from __future__ import annotations

from doc_blocks import run_python_blocks


def test_tutorial_runs(capsys) -> None:
    assert run_python_blocks("docs/tutorial.md") >= 5
    out = capsys.readouterr().out
    assert "perez_ruixo_2021" in out and "reached: ['nmda']" in out
    assert "phq9_item9_positive" in out
