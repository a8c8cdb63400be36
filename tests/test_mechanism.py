"""The mechanistic cascade: against an ODE solver, and its qualitative behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from ketasim.errors import ModelError
from ketasim.mechanism import (
    CASCADE,
    REFERENCE_REGIMEN,
    Branches,
    CascadeInputs,
    cascade_inputs,
    course_grid,
    run_cascade,
)
from ketasim.mechanism.cascade import CALIBRATED_DEFAULTS
from ketasim.mechanism.glutamate import surge_drive
from ketasim.mechanism.kinetics import hold_decay, relax
from ketasim.population import run_pk


@pytest.fixture(scope="module")
def reference_inputs() -> CascadeInputs:
    t = course_grid([0.0, 84.0], 24.0 * 10)
    return cascade_inputs(run_pk("0.5 mg/kg IV over 40 min twice weekly for 1 week",
                                 covariates={"weight": 70.0}, times=t))


def test_relax_matches_closed_form_for_a_ramp() -> None:
    # dx/dt = k (t - x), x(0) = 0  →  x = t - (1 - e^{-kt})/k
    t = np.linspace(0.0, 5.0, 11)
    k = math.log(2.0) / 0.7
    exact = t - (1.0 - np.exp(-k * t)) / k
    assert np.allclose(relax(t, t.copy(), 0.7), exact, rtol=1e-12, atol=1e-12)


def test_hold_decay_follows_up_and_releases() -> None:
    t = np.array([0.0, 1.0, 2.0, 6.0])
    x = hold_decay(t, np.array([0.2, 0.5, 0.0, 0.0]), 4.0)
    assert x[1] == 0.5 and x[2] == pytest.approx(0.5 * 2 ** -0.25)
    assert x[3] == pytest.approx(0.5 * 2 ** -1.25)


def test_cascade_matches_lsoda(reference_inputs: CascadeInputs) -> None:
    """The whole main cascade as one ODE (input = occupancy interpolated linearly)."""
    inp = reference_inputs
    t = inp.times
    occ = inp.nmda[0]
    s = {k: p.value for k, p in CASCADE.items()} | CALIBRATED_DEFAULTS
    k = {n: math.log(2.0) / s[n] for n in ("t_half_glutamate_h", "t_half_bdnf_h",
                                          "t_half_mtor_h", "t_half_protein_h",
                                          "t_half_spine_h", "t_half_potentiation_h",
                                          "t_half_adaptation_h")}

    def rhs(tt: float, y: np.ndarray) -> np.ndarray:
        o = np.interp(tt, t, occ)
        u = float(surge_drive(np.array(o), s["o_zero"]))
        r, q, b, m, p, sp, h = y
        return np.array([k["t_half_glutamate_h"] * (u - r), k["t_half_adaptation_h"] * (u - q),
                         k["t_half_bdnf_h"] * (max(r - q, 0.0) - b),
                         k["t_half_mtor_h"] * (b - m), k["t_half_protein_h"] * (m - p),
                         k["t_half_spine_h"] * (p - sp), k["t_half_potentiation_h"] * (b - h)])

    sol = solve_ivp(rhs, (0.0, t[-1]), np.zeros(7), method="LSODA", t_eval=t, rtol=1e-10,
                    atol=1e-12, max_step=1 / 60)
    c = run_cascade(inp)
    g_ref = sol.y[0] - sol.y[1]
    assert np.max(np.abs(c.glutamate[0] - g_ref)) / np.max(np.abs(g_ref)) < 2e-3
    scale = c.bdnf[0].max() / sol.y[2].max()  # run_cascade normalises BDNF onward
    for row, ours in ((2, c.bdnf[0]), (3, c.mtor[0]), (4, c.proteins[0]), (5, c.spines[0]),
                      (6, c.potentiation[0])):
        ref = sol.y[row] * scale
        assert np.max(np.abs(ours - ref)) / np.max(np.abs(ref)) < 2e-3, row


def test_inverted_u() -> None:
    d = surge_drive(np.array([0.1, 0.4, 0.7, 0.9]), 0.8)
    assert d[1] > d[0] and d[1] > d[2] and d[3] < 0


def test_reference_regimen_is_normalised() -> None:
    t = course_grid([0.0], 24.0 * 14)
    c = run_cascade(cascade_inputs(run_pk(REFERENCE_REGIMEN, covariates={"weight": 70.0},
                                          times=t)))
    assert c.fast.max() == pytest.approx(1.0, rel=1e-6)
    assert c.slow.max() == pytest.approx(1.0, rel=1e-6)
    assert c.glutamate_pct().max() == pytest.approx(13.0, rel=1e-6)
    # mTORC1 window: peaks within 0.5-2 h of the infusion's end, gone by ~4 h
    tm = t[np.argmax(c.mtor[0])]
    assert 0.7 < tm < 2.7
    assert c.mtor[0][np.searchsorted(t, 5.0)] < 0.1 * c.mtor.max()
    # new spines: peak after 12 h
    assert t[np.argmax(c.spines[0])] > 12.0


def test_mtor_switch_blocks_the_slow_not_the_fast(reference_inputs: CascadeInputs) -> None:
    on = run_cascade(reference_inputs)
    off = run_cascade(reference_inputs, branches=Branches(mtor=False))
    assert np.all(off.slow == 0.0) and np.allclose(off.fast, on.fast)


def test_repeated_doses_accumulate(reference_inputs: CascadeInputs) -> None:
    c = run_cascade(reference_inputs)
    t = c.times
    first = c.spines[0][t < 84.0].max()
    second = c.spines[0][t >= 84.0].max()
    assert second > first


def test_branches_change_predictions_only_where_their_kinetics_differ(
        reference_inputs: CascadeInputs) -> None:
    base = run_cascade(reference_inputs)
    for name in ("hnk", "lhb", "inflammation", "monoamine", "neurogenesis"):
        c = run_cascade(reference_inputs, branches=Branches(**{name: True}))
        assert not np.allclose(c.drive, base.drive), name
        assert c.drive.max() < 2.0 * base.drive.max(), name
    gated = run_cascade(reference_inputs, branches=Branches(opioid=True), opioid_block=1.0)
    assert gated.drive.max() == 0.0
    same = run_cascade(reference_inputs, branches=Branches(opioid=True), opioid_block=0.0)
    assert np.allclose(same.drive, base.drive)


def test_esketamine_has_no_hnk_drive() -> None:
    t = course_grid([0.0], 48.0)
    inp = cascade_inputs(run_pk("84 mg esketamine intranasal", times=t))
    assert inp.hnk_2r6r_um.max() == 0.0


def test_branch_parsing() -> None:
    assert Branches.parse("hnk, no-mtor") == Branches(hnk=True, mtor=False)
    with pytest.raises(ModelError, match="unknown branch"):
        Branches.parse("dopamine-d2")


def test_grid_rejects_bad_horizon() -> None:
    with pytest.raises(ModelError):
        course_grid([0.0], -1.0)
