"""Parameters of the mechanistic cascade, each with unit, evidence and source, and the
switchable hypotheses (branches) with their evidence and counter-evidence.

Time constants follow the published cascade (sources name bibliography keys, see
:mod:`ketasim.references`). Most cascade time scales come from rodent work and carry the grade
of how each number was checked; where the literature gives only a window ("peak 30-60 min,
back to baseline by ~2 h") the half-life that reproduces the window is ``assumed`` and says
so. Values fitted to clinical trials are
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

CASCADE: dict[str, Parameter] = {
    "o_zero": assumed(
        0.80, "fraction", "NMDA occupancy at which the glutamate surge vanishes (inverted U)",
        "moghaddam1997 [V]: surge at 10-30 mg/kg, none at 50 mg/kg (the rat's "
        "sub-anaesthetic/anaesthetic border), a fall at 200 mg/kg; mapped to the occupancy this "
        "model gives at ~1 µg/mL racemic plasma, the anaesthetic threshold"),
    "t_half_glutamate_h": assumed(
        10 / 60, "h", "glutamate surge turnover half-life",
        "disinhibition in minutes to tens of minutes; human Glu/Gln cycling up during "
        "infusion, not at 2-3 h (abdallah2018; spurny2021) [V]"),
    "t_half_adaptation_h": assumed(
        0.5, "h", "adaptation of the glutamate surge to sustained NMDA block",
        "human Glu/Gln cycling up during infusion, no change at ~3 h (abdallah2018; "
        "spurny2021) [V] while plasma ketamine is still ~1/3 of its peak; 30 min ends the "
        "surge by 2-3 h"),
    "glutamate_surge_ref_pct": lit(
        13.0, "%", "rise of 13C-glutamine enrichment during a 0.5 mg/kg-class infusion, used "
        "only to express the surge in % for reports", "abdallah2018 [V]",
        grade="V"),
    "t_half_bdnf_h": assumed(
        0.25, "h", "BDNF translation (eEF2) turnover half-life",
        "p-eEF2 falls and BDNF rises ~30 min after dosing (autry2011, abstract) [V; timing "
        "M]; 15 min puts the BDNF peak ~30 min after the surge"),
    "t_half_mtor_h": assumed(
        0.333, "h", "mTORC1 activation turnover half-life",
        "peak 30-60 min, back to baseline by ~2 h (li2010) [M timings]"),
    "t_half_protein_h": assumed(
        24.0, "h", "loss half-life of synaptic proteins (GluA1, PSD-95, synapsin I)",
        "rise from 2 h, persist to ~72 h (li2010) [M]; 24 h leaves ~12 % at 72 h"),
    "t_half_potentiation_h": assumed(
        2.0, "h", "mTOR-independent fast synaptic potentiation (homeostatic upscaling) half-life",
        "behaviour improves before new spines (modasava2019) [V]; fast homeostatic upscaling "
        "over hours, independent of LTP (kavalali2022) [V]"),
    "t_half_untrap_h": assumed(
        4.0, "h", "lateral-habenula NMDA untrapping half-life",
        "block persists up to 24 h after one injection (ma2023) [V]; 4 h leaves < 2 % at "
        "24 h"),
    "t_half_kynurenine_h": assumed(
        36.0, "h", "kynurenine/inflammation modulator half-life",
        "IDO falls at 230 min, day 1 and day 3 (kadriu2021) [V]"),
    "t_half_neurogenesis_h": assumed(
        336.0, "h", "neurogenesis modulator half-life (2 weeks)",
        "no published human time constant; a slow modulator with explicit uncertainty "
        "(rodent adult neurogenesis takes weeks)"),
    "branch_share": assumed(
        0.25, "fraction", "share of the antidepressant drive given to a hypothesis branch when "
        "it is switched on", "the evidence does not say how much each hypothesis explains; "
        "each branch is normalised on the reference regimen so that switching it on changes "
        "predictions for other compounds, doses and schedules, not for the calibration anchor"),
}

# The dose every normalisation refers to (the human time constants assume it: zarate2006)
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
           "i.c.v. rapamycin blocks synaptogenesis and the behavioural effect (li2010) [V]; "
           "new spines sustain, not start, the effect (modasava2019) [V]",
           "no human rapamycin pre-treatment data were found", default=True),
    Branch("hnk", "(2R,6R)-HNK drives AMPA receptors independently of NMDA block",
           "NMDAR-independent, AMPAR-dependent effects in mice; deuterated ketamine loses "
           "effect (zanos2016) [M]",
           "no effect in rat learned helplessness (Yang 2018, Int J Neuropsychopharmacol) "
           "[V]; in humans higher plasma (2R,6R)-HNK went with less improvement (PubMed "
           "Central PMC6746183) [V]"),
    Branch("opioid", "opioid receptors are permissive for the antidepressant effect",
           "naltrexone 50 mg blocked the day-1/day-3 effect but not dissociation "
           "(williams2018) [V]",
           "RCT n=65: ketamine + naltrexone = ketamine + saline (yoon2025) [V]; case series "
           "5/5 responders on naltrexone (Yoon 2019, JAMA Psychiatry) [V]"),
    Branch("lhb", "lateral-habenula NMDA trapping keeps bursts blocked up to 24 h",
           "local LHb block suffices (yang2018) [V]; block persists 24 h (ma2023) [V]",
           "sustained effects independent of the LHb (zhou2021) [V]"),
    Branch("inflammation", "kynurenine/anti-inflammatory modulation over days",
           "IDO falls and KYN/KYNA rise days 1-3 in bipolar TRD (kadriu2021) [V]",
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
