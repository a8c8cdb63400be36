"""The public "could ketamine therapy help me?" screening: what was asked, and the honest,
sourced summary it returns. It never says a person is eligible; it says what the evidence is
for their condition and what a clinician will look at.

Cautions follow the SPRAVATO label (``spravato-label``: contraindications, BP screening
threshold, psychosis, pregnancy, substance use, interactions).

>>> s = screen(ScreeningAnswers(condition="depression", prior_treatments=["antidepressants_2"],
...            cautions=["hypertension"], phq9=[2] * 9, gad7=[1] * 7))
>>> s.phq9.total, s.urgent, "eligible" in s.headline.lower()
(18, True, False)
>>> [c.id for c in s.cautions]
['hypertension']
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ketasim.clinic.references import public_text
from ketasim.outcomes.indications import Indication, get_indication
from ketasim.scales import Score, score

# the label, as a bibliography key (pages show it as a full citation with its link)
PI = "spravato-label"

# condition asked about → (label, indication id or None)
CONDITIONS: dict[str, tuple[str, str | None]] = {
    "depression": ("Depression that has not improved with treatment", "trd"),
    "bipolar_depression": ("Bipolar depression", "bipolar"),
    "suicidal_thoughts": ("Depression with thoughts of suicide", "suicidal_ideation"),
    "ptsd": ("Post-traumatic stress disorder (PTSD)", "ptsd"),
    "anxiety": ("Generalized anxiety", "gad"),
    "social_anxiety": ("Social anxiety", "social_anxiety"),
    "ocd": ("Obsessive-compulsive disorder (OCD)", "ocd"),
    "chronic_pain": ("Chronic pain (e.g. CRPS)", "crps"),
    "alcohol": ("Alcohol use problems", "alcohol_use"),
    "eating_disorder": ("An eating disorder", "eating_disorders"),
    "other": ("Something else", None),
}

PRIOR_TREATMENTS = {
    "antidepressants_2": "two or more antidepressants at an adequate dose and duration",
    "antidepressants_1": "one antidepressant",
    "psychotherapy": "psychotherapy",
    "ect": "electroconvulsive therapy (ECT)",
    "tms": "transcranial magnetic stimulation (TMS)",
    "none": "no treatment yet",
}


@dataclass(frozen=True)
class Caution:
    """A contraindication or caution a clinician will examine."""

    id: str
    label: str
    why: str
    source: str


CAUTIONS: dict[str, Caution] = {c.id: c for c in (
    Caution("hypertension", "High blood pressure that is not controlled",
            "ketamine raises blood pressure for a few hours (peak ~40 min); a clinician "
            "measures it before each dose and may not dose above ~140/90 mmHg",
            f"{PI}: warnings, increase in blood pressure"),
    Caution("aneurysm_avm", "Aneurysm (aorta, brain or other arteries) or an arteriovenous "
            "malformation", "a contraindication for esketamine (Spravato)",
            f"{PI}: contraindications"),
    Caution("brain_bleed", "A past bleed in the brain (intracerebral haemorrhage)",
            "a contraindication for esketamine (Spravato)", f"{PI}: contraindications"),
    Caution("pregnancy", "Pregnancy, planning pregnancy or breastfeeding",
            "not recommended: embryo-fetal toxicity in animals; present in milk",
            f"{PI}: use in pregnancy and lactation"),
    Caution("psychosis", "Psychosis now or in the past (e.g. schizophrenia)",
            "a clinician weighs the risk carefully; trials excluded psychosis",
            f"{PI}: warnings; the trials' exclusion criteria"),
    Caution("substance_use", "Problems with alcohol, drugs or ketamine itself",
            "abuse risk is assessed before prescribing; trials excluded recent substance use "
            "disorder", f"{PI}: warnings, abuse and misuse"),
    Caution("bp_medicines", "Medicines that raise blood pressure (stimulants, MAOIs)",
            "they add to the rise in blood pressure", f"{PI}: drug interactions"),
    Caution("sedatives", "Medicines that make you drowsy (benzodiazepines, opioids, "
            "sleeping pills)", "they add to sedation", f"{PI}: drug interactions"),
)}


# the questions as the person reads them (PHQ-9 and GAD-7: Spitzer, Williams, Kroenke and
# colleagues, Pfizer; free to reproduce, no permission required), and the answers' words
ITEM_TEXT: dict[str, tuple[str, ...]] = {
    "phq9": ("Little interest or pleasure in doing things",
             "Feeling down, depressed, or hopeless",
             "Trouble falling or staying asleep, or sleeping too much",
             "Feeling tired or having little energy",
             "Poor appetite or overeating",
             "Feeling bad about yourself — or that you are a failure or have let yourself or "
             "your family down",
             "Trouble concentrating on things, such as reading the newspaper or watching "
             "television",
             "Moving or speaking so slowly that other people could have noticed? Or the "
             "opposite — being so fidgety or restless that you have been moving around a lot "
             "more than usual",
             "Thoughts that you would be better off dead or of hurting yourself in some way"),
    "gad7": ("Feeling nervous, anxious or on edge",
             "Not being able to stop or control worrying",
             "Worrying too much about different things",
             "Trouble relaxing",
             "Being so restless that it is hard to sit still",
             "Becoming easily annoyed or irritable",
             "Feeling afraid as if something awful might happen"),
}
FREQUENCY = ("Not at all", "Several days", "More than half the days", "Nearly every day")
ANSWER_WORDS: dict[str, tuple[str, ...]] = {"phq9": FREQUENCY, "gad7": FREQUENCY}


class ScreeningAnswers(BaseModel):
    """What the person answered (validated strictly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    condition: str
    prior_treatments: list[str] = Field(default_factory=list)
    cautions: list[str] = Field(default_factory=list)
    phq9: list[int]
    gad7: list[int]

    @field_validator("condition")
    @classmethod
    def _condition(cls, v: str) -> str:
        if v not in CONDITIONS:
            raise ValueError(f"choose one of {', '.join(CONDITIONS)}")
        return v

    @field_validator("prior_treatments", "cautions")
    @classmethod
    def _known(cls, v: list[str], info: ValidationInfo) -> list[str]:
        known, what = ((PRIOR_TREATMENTS, "treatment") if info.field_name == "prior_treatments"
                       else (CAUTIONS, "caution"))
        bad = [x for x in v if x not in known]
        if bad:
            raise ValueError(f"unknown {what} {bad[0]!r}")
        return v


@dataclass(frozen=True)
class ScreeningSummary:
    """The honest answer: evidence, what a clinician will look at, and safety first."""

    headline: str
    indication: Indication | None
    phq9: Score
    gad7: Score
    cautions: list[Caution]
    looks_at: list[str]
    urgent: bool


def screen(a: ScreeningAnswers) -> ScreeningSummary:
    """Score the questionnaires and build the summary (never a verdict of eligibility)."""
    phq9 = score("phq9", a.phq9)
    gad7 = score("gad7", a.gad7)
    ind_id = CONDITIONS[a.condition][1]
    ind = get_indication(ind_id) if ind_id else None
    if ind is None:
        headline = ("ketasim has no trial evidence summary for this condition; a clinician "
                    "will discuss whether any evidence applies to you.")
    elif not ind.predicts_efficacy:
        headline = (f"For {ind.name.lower()} the evidence is limited: {public_text(ind.reason)}. "
                    "A clinician "
                    "will discuss whether ketamine is appropriate.")
    else:
        headline = (f"The research on ketamine for {ind.name.lower()} is graded {ind.grade}, on a "
                    "scale from A (several randomised trials) to D (case reports only). Whether "
                    "it could help you is a decision for a clinician who examines you.")
    looks_at = ["your blood pressure, measured at the clinic",
                "your psychiatric and medical history and current medicines",
                "what treatments you have tried "
                + (f"({', '.join(PRIOR_TREATMENTS[t] for t in a.prior_treatments)})"
                   if a.prior_treatments else "(none given)")]
    if a.condition == "depression" and "antidepressants_2" not in a.prior_treatments:
        looks_at.append("whether the depression is treatment-resistant (usually two or more "
                        "antidepressants tried without enough improvement)")
    return ScreeningSummary(headline, ind, phq9, gad7, [CAUTIONS[c] for c in a.cautions],
                            looks_at, urgent="phq9_item9_positive" in phq9.flags)


__all__ = ["ANSWER_WORDS", "CAUTIONS", "CONDITIONS", "ITEM_TEXT", "PRIOR_TREATMENTS", "Caution",
           "ScreeningAnswers", "ScreeningSummary", "screen"]
