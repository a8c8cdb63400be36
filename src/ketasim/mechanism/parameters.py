"""Parameters of the mechanistic cascade, each with unit, evidence and source, and the
switchable hypotheses (branches) with their evidence and counter-evidence.

Time constants follow shared/reference/ketamine-pd-clinical.md §B1-B2 and §H ("PDC" below).
Most cascade time scales come from rodent work and are tagged with the dossier's grade; where
the dossier gives only a window ("peak 30-60 min, back to baseline by ~2 h") the half-life
that reproduces the window is ``assumed`` and says so. Values fitted to clinical trials are
``calibrated`` and read from the stored calibration (``ketasim calibrate outcomes``).

>>> CASCADE["t_half_mtor_h"].evidence, CASCADE["t_half_mtor_h"].value
('assumed', 0.333)
>>> Branches().enabled(), Branches(hnk=True).enabled()
((), ('hnk',))
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ketasim.model.model import Parameter
from ketasim.pk.library._common import assumed, lit

PDC = "ketamine-pd-clinical.md"

CASCADE: dict[str, Parameter] = {
    "o_zero": assumed(
        0.80, "fraction", "NMDA occupancy at which the glutamate surge vanishes (inverted U)",
        f"{PDC} §B1 row 3 (Moghaddam 1997 [V]): surge at 10-30 mg/kg, none at 50 mg/kg (the "
        "rat's sub-anaesthetic/anaesthetic border), a fall at 200 mg/kg; mapped to the "
        "occupancy this model gives at ~1 µg/mL racemic plasma, the anaesthetic threshold"),
    "t_half_glutamate_h": assumed(
        10 / 60, "h", "glutamate surge turnover half-life",
        f"{PDC} §B1 rows 2-3h: disinhibition in minutes to tens of minutes; human Glu/Gln "
        "cycling up during infusion, not at 2-3 h (Abdallah 2018; Spurny 2021 [V])"),
    "t_half_adaptation_h": assumed(
        0.5, "h", "adaptation of the glutamate surge to sustained NMDA block",
        f"{PDC} §B1 row 3h: human Glu/Gln cycling up during infusion, no change at ~3 h "
        "(Abdallah 2018; Spurny 2021 [V]) while plasma ketamine is still ~1/3 of its peak; "
        "30 min ends the surge by 2-3 h"),
    "glutamate_surge_ref_pct": lit(
        13.0, "%", "rise of 13C-glutamine enrichment during a 0.5 mg/kg-class infusion, used "
        "only to express the surge in % for reports", f"{PDC} §B1 row 3h, Abdallah 2018 [V]",
        grade="V"),
    "t_half_bdnf_h": assumed(
        0.25, "h", "BDNF translation (eEF2) turnover half-life",
        f"{PDC} §B1 row 5: p-eEF2 falls and BDNF rises ~30 min after dosing (Autry 2011 "
        "[V abstract; timing M]); 15 min puts the BDNF peak ~30 min after the surge"),
    "t_half_mtor_h": assumed(
        0.333, "h", "mTORC1 activation turnover half-life",
        f"{PDC} §B1 row 6: peak 30-60 min, back to baseline by ~2 h (Li 2010 [M timings])"),
    "t_half_protein_h": assumed(
        24.0, "h", "loss half-life of synaptic proteins (GluA1, PSD-95, synapsin I)",
        f"{PDC} §B1 row 7: rise from 2 h, persist to ~72 h (Li 2010 [M]); 24 h leaves "
        "~12 % at 72 h"),
    "t_half_potentiation_h": assumed(
        2.0, "h", "mTOR-independent fast synaptic potentiation (homeostatic upscaling) half-life",
        f"{PDC} §B1 rows 8b, 11: behaviour improves before new spines (Moda-Sava 2019 [V]); "
        "fast homeostatic upscaling over hours, independent of LTP (Kavalali & Monteggia "
        "2022 [V])"),
    "t_half_untrap_h": assumed(
        4.0, "h", "lateral-habenula NMDA untrapping half-life",
        f"{PDC} §B1 row 1b: block persists up to 24 h after one injection (Ma 2023 [V]); "
        "4 h leaves < 2 % at 24 h"),
    "t_half_kynurenine_h": assumed(
        36.0, "h", "kynurenine/inflammation modulator half-life",
        f"{PDC} §B1 row 16: IDO falls at 230 min, day 1 and day 3 (Kadriu 2019/2021 [V])"),
    "t_half_neurogenesis_h": assumed(
        336.0, "h", "neurogenesis modulator half-life (2 weeks)",
        "no human time constant in the reference; a slow modulator with explicit "
        "uncertainty (rodent adult neurogenesis takes weeks)"),
    "branch_share": assumed(
        0.25, "fraction", "share of the antidepressant drive given to a hypothesis branch when "
        "it is switched on", "the evidence does not say how much each hypothesis explains; "
        "each branch is normalised on the reference regimen so that switching it on changes "
        "predictions for other compounds, doses and schedules, not for the calibration anchor"),
}

# The dose every normalisation refers to (ketamine-pd-clinical.md §B2: human values assume it)
REFERENCE_REGIMEN = "0.5 mg/kg IV over 40 min"
REFERENCE_WEIGHT_KG = 70.0


@dataclass(frozen=True)
class Branch:
    """A hypothesis that can be switched on, with the evidence for and against it."""

    id: str
    title: str
    evidence: str
    counter_evidence: str
    default: bool = False


BRANCHES: dict[str, Branch] = {b.id: b for b in (
    Branch("mtor", "mTORC1 signalling (switch off = rapamycin)",
           "i.c.v. rapamycin blocks synaptogenesis and the behavioural effect (Li 2010 [V]); "
           "new spines sustain, not start, the effect (Moda-Sava 2019 [V])",
           "human rapamycin pre-treatment data are not in the reference", default=True),
    Branch("hnk", "(2R,6R)-HNK drives AMPA receptors independently of NMDA block",
           "NMDAR-independent, AMPAR-dependent effects in mice; deuterated ketamine loses "
           "effect (Zanos 2016 [M])",
           "no effect in rat learned helplessness (Yang 2018 IJNP [V]); in humans higher "
           "plasma (2R,6R)-HNK went with less improvement (PMC6746183 [V])"),
    Branch("opioid", "opioid receptors are permissive for the antidepressant effect",
           "naltrexone 50 mg blocked the day-1/day-3 effect but not dissociation "
           "(Williams 2018 [V])",
           "RCT n=65: ketamine + naltrexone = ketamine + saline (Yoon 2025 [V]); case series "
           "5/5 responders on naltrexone (Yoon 2019 [V])"),
    Branch("lhb", "lateral-habenula NMDA trapping keeps bursts blocked up to 24 h",
           "local LHb block suffices (Yang 2018 Nature [V]); block persists 24 h (Ma 2023 [V])",
           "sustained effects independent of the LHb (Zhou 2021 J Neurosci [V])"),
    Branch("inflammation", "kynurenine/anti-inflammatory modulation over days",
           "IDO falls and KYN/KYNA rise days 1-3 in bipolar TRD (Kadriu [V])",
           "human cytokine evidence heterogeneous (Kopra 2021 [V])"),
    Branch("monoamine", "transient serotonin and dopamine changes",
           "SERT binding falls during infusion (Yamanaka 2014 [V]); S-ketamine raises mPFC "
           "dopamine (Bonaventura 2021 [V])",
           "changes are transient and absent at 24 h; no direct DA receptor affinity"),
    Branch("neurogenesis", "hippocampal neurogenesis as a slow modulator",
           "mentioned in reviews (seed text); rodent only", "no human quantitative evidence; "
           "time constant assumed"),
)}


@dataclass(frozen=True)
class Branches:
    """Which hypotheses are on. ``mtor=False`` simulates mTORC1 blockade (rapamycin)."""

    mtor: bool = True
    hnk: bool = False
    opioid: bool = False
    lhb: bool = False
    inflammation: bool = False
    monoamine: bool = False
    neurogenesis: bool = False

    def enabled(self) -> tuple[str, ...]:
        """Alternative branches switched on (not counting mTOR)."""
        return tuple(f.name for f in fields(self) if f.name != "mtor" and getattr(self, f.name))

    @classmethod
    def parse(cls, names: str | list[str] | None) -> Branches:
        """From 'hnk,lhb' or ['hnk', 'no-mtor']."""
        from ketasim.errors import ModelError
        if not names:
            return cls()
        items = names.split(",") if isinstance(names, str) else list(names)
        kw: dict[str, bool] = {}
        for raw in items:
            name = raw.strip().lower()
            if not name:
                continue
            on = not name.startswith("no-")
            key = name.removeprefix("no-")
            if key not in BRANCHES:
                raise ModelError("branches", f"unknown branch {raw!r}",
                                 f"use {', '.join(BRANCHES)} (prefix no- to switch off)")
            kw[key] = on
        return cls(**kw)


__all__ = ["BRANCHES", "CASCADE", "REFERENCE_REGIMEN", "REFERENCE_WEIGHT_KG", "Branch",
           "Branches"]
