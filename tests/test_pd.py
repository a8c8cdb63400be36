"""Target data, effect site and competitive occupancy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ketasim.dosing import Route
from ketasim.engine import simulate
from ketasim.model import Compartment, Flow, Link, Model, Output, Parameter
from ketasim.pd import (
    KE0_PER_H,
    effect_site,
    load_target_data,
    occupancy,
    peak_occupancy,
    shares,
    target_exposure,
)
from ketasim.population import run_pk


def test_every_affinity_and_fraction_has_a_source() -> None:
    data = load_target_data()
    assert len(data.default_targets()) >= 15
    assert "d2high" not in data.default_targets() and data.targets["d2high"].dispute
    for c in data.compounds.values():
        assert 0 < c.fu <= 1 and c.fu_source and c.fu_grade
    for row in data.rows.values():
        assert row.value_um > 0 and row.source and row.grade in ("V", "S", "M", "U", "derived")
    # enantiomers fall back to the racemic value, tagged as assumed
    a = data.affinity("sert", "s_ketamine")
    assert a is not None and a.grade == "assumed" and a.value_um == 162.0
    assert data.affinity("nmda", "hnk_2r6r") is None  # no binding ≤ 10 µM


def test_effect_site_matches_the_exact_effect_compartment() -> None:
    m = Model("ce", {"cl": Parameter(60.0, "L/h"), "v": Parameter(50.0, "L"),
                     "ke0": Parameter(KE0_PER_H, "1/h")},
              [Compartment("central"), Compartment("effect")],
              [Flow("central", None, "cl / v"), Flow("effect", None, "ke0")],
              links=[Link("central", "effect", "ke0 / v")],
              outputs={"cp": Output("central / v"), "ce": Output("effect")},
              routes={Route.IV_INFUSION: "central"})
    t = np.arange(0.0, 6.0 + 1e-9, 1.0 / 60.0)
    r = simulate(m, "35 mg IV over 40 min", times=t)
    ce = effect_site(t, r["cp"])
    rel = np.abs(ce[10:] - r["ce"][10:]) / r["ce"][10:].max()
    assert rel.max() < 1e-3
    # a step to a constant approaches it with half-life t½ke0
    c = np.ones_like(t)
    step = effect_site(t, c)
    assert np.allclose(step, 1 - 2 ** (-t * 60 / 8.3), atol=1e-12)


def test_competitive_occupancy_algebra() -> None:
    c = np.array([[[0.3, 0.0]], [[1.4, 0.0]]])
    inv_k = np.array([[1 / 0.3, 0.0], [1 / 1.4, 1 / 2.0]])
    occ = occupancy(c, inv_k)
    assert occ.shape == (2, 1, 2)
    assert occ[0, 0, 0] == pytest.approx(2 / 3)
    assert occ[1, 0, 0] == pytest.approx(0.7 / 1.7)
    sh = shares(c, inv_k)
    assert sh[:, 0, 0, 0].sum() == pytest.approx(occ[0, 0, 0])
    assert sh[0, 0, 0, 0] == pytest.approx(0.5 / 1.5) and sh[1, 0, 0, 0] == pytest.approx(
        1.0 / 3.0)
    assert np.allclose(peak_occupancy(c, inv_k), occ.max(axis=-1))


def test_only_nmda_is_meaningfully_occupied_at_antidepressant_doses() -> None:
    for regimen, w in (("0.5 mg/kg IV over 40 min", 70.0), ("84 mg esketamine intranasal",
                                                              80.0)):
        run = run_pk(regimen, covariates={"weight": w}, times=np.arange(0, 8, 1 / 60))
        tx = target_exposure(run)
        assert tx.meaningful() == ["nmda"]
        assert 0.3 < float(tx.peak["nmda"][0]) < 0.6
        assert all(float(tx.peak[t][0]) < 0.15 for t in tx.targets if t != "nmda")
        # the peak comes a few minutes after the plasma peak (effect-site lag)
        t_occ = tx.times[np.argmax(tx.occupancy["nmda"][0])]
        t_cp = run.times[np.argmax(run.concentration(run.model.analytes[0].id)[0])]
        assert t_occ > t_cp


def test_occupancy_cli_marks_disputed_targets() -> None:
    r = subprocess.run([sys.executable, "-m", "ketasim", "occupancy", "--regimen",
                        "0.5 mg/kg IV over 40 min", "--weight", "70", "--include-disputed",
                        "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    import json
    data = json.loads(r.stdout)
    assert data["targets"]["d2high"]["disputed"] is True
    assert data["targets"]["nmda"]["meaningful"] is True
    assert data["targets"]["mor"]["meaningful"] is False


def test_pd_validation_verdicts() -> None:
    from ketasim.validation.pd import run_pd_validation
    out = {o.target.id: o for o in run_pd_validation()}
    assert out["occupancy_nmda_racemic"].verdict == "known discrepancy"
    assert out["occupancy_nmda_racemic"].target.note
    assert 0.3 < out["occupancy_nmda_racemic"].predicted < 0.5
    others = [o for k, o in out.items() if k not in ("occupancy_nmda_racemic",
                                                     "occupancy_d2high_disputed")]
    assert len(others) >= 14 and all(o.verdict == "pass" for o in others)
    assert out["occupancy_d2high_disputed"].verdict == "outside band"
