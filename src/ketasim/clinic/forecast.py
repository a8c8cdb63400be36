"""A treatment plan's forecast for one patient: exposure and the expected symptom course.

Built from the PK library (typical patient at this weight) and the outcome model (300 virtual
patients at this weight and baseline: the band is how differently people respond). The
forecast is on PHQ-9 when the indication includes it (what clinics measure between visits),
otherwise on the indication's own instrument.

>>> f = plan_forecast("0.5 mg/kg IV over 40 min three times weekly for 2 weeks", "trd",
...                   weight_kg=70, baseline=18, n=100)
>>> f["instrument"], len(f["days"]) == len(f["p50"]), f["cmax_ng_ml"] > 100
('phq9', True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ketasim.outcomes.course import Arm, simulate_course
from ketasim.outcomes.endpoints import responders
from ketasim.outcomes.indications import get_indication
from ketasim.population.pkrun import DISCLAIMER, run_pk
from ketasim.scales import get_instrument


def plan_forecast(regimen: str, indication: str, *, weight_kg: float,
                  baseline: float | None = None, n: int = 300, seed: int = 0,
                  follow_up_days: float = 28.0) -> dict[str, Any]:
    """Daily median and 5-95 % band of the score, P(response), and first-dose exposure."""
    ind = get_indication(indication)
    inst = get_instrument("phq9" if "phq9" in ind.instruments else ind.instrument)
    arm = Arm(regimen=regimen)
    last = max(arm.dose_times())
    horizon = last + 24.0 * follow_up_days
    prim = get_instrument(ind.instrument)
    base_prim = None
    if baseline is not None:
        lo, hi = inst.total_range
        plo, phi = prim.total_range
        base_prim = plo + (baseline - lo) / (hi - lo) * (phi - plo)
    course = simulate_course(arm, ind, n=n, seed=seed, horizon_h=horizon,
                             baseline_mean=base_prim, baseline_sd=0.0 if baseline else None,
                             weight_kg=weight_kg)
    days = np.arange(0.0, horizon / 24.0 + 1e-9, 1.0)
    idx = [course.index(d * 24.0) for d in days]
    scores = course.scores(inst.id, noise=False)[:, idx]
    p5, p50, p95 = np.percentile(scores, [5, 50, 95], axis=0)
    resp = [float(responders(course, d * 24.0, inst.id).mean()) for d in days] \
        if inst.response_fall is not None else []
    first = run_pk(regimen, covariates={"weight": weight_kg},
                   times=np.arange(0.0, 12.0, 5.0 / 60.0))
    parent = "esketamine" if "esketamine" in first.concentrations else "ketamine"
    c = first.concentration(parent, "ng/mL")[0]
    return {"instrument": inst.id, "days": days.tolist(), "p5": p5.round(2).tolist(),
            "p50": p50.round(2).tolist(), "p95": p95.round(2).tolist(),
            "p_response": [round(x, 3) for x in resp],
            "baseline": round(float(course.baseline_of(inst.id).mean()), 2),
            "cmax_ng_ml": round(float(c.max()), 1),
            "tmax_h": round(float(first.times[int(np.argmax(c))]), 2),
            "analyte": parent, "pk_model": first.model.name, "disclaimer": DISCLAIMER}


def warm_forecast_kernels() -> int:
    """Run one forecast per protocol of the library (``ketasim.clinic.protocols``), so that
    the compiled population kernels they use are in the kernel cache: compiling one takes
    ~30 s on 2 cores the first time after installing, loading it ~1 s. ``ketasim serve``
    runs this in the background as it starts, so that a clinic's first forecast does not wait
    for the compiler. Returns how many forecasts ran."""
    from ketasim.clinic.protocols import PROTOCOLS
    for p in PROTOCOLS.values():
        plan_forecast(p.regimen, "trd", weight_kg=70.0)
    return len(PROTOCOLS)


__all__ = ["plan_forecast", "warm_forecast_kernels"]
