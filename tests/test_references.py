"""Sources that resolve everywhere (issue #17 item 7): the packaged bibliography, every source
key resolving to a record with a DOI or PMID (or a stated reason why the work has none),
full citations with links wherever a source is shown, ``ketasim references``, the explain
report's labelled axes, and no page, report, command output or packaged data file naming the
team's working notes (which users do not have)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.test_web import app, client, login  # noqa: F401

from ketasim.references import (
    CitationError,
    Source,
    cited_keys,
    csl_items,
    format_citation,
    load_bibliography,
    render_source,
    resolve,
)

# the working notes' file names (and the short forms used for them in the team's notes)
NOTES = re.compile(r"ketamine-pk|ketamine-pd-clinical|ketamine-acute-pd|reliability-security|"
                   r"shared/reference|\bPDC\b|\.md\s*§")
IMAGE = re.compile(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+")
KETASIM = str(Path(sys.executable).with_name("ketasim"))  # the installed entry point


def notes_in(text: str) -> list[str]:
    """Working-note mentions in ``text`` (embedded images removed first), with context."""
    text = IMAGE.sub("", text)
    return [text[max(0, m.start() - 40):m.end() + 20] for m in NOTES.finditer(text)]


def all_sources() -> list[tuple[str, str]]:
    """(where, text) for every source ketasim holds: parameters of every library model and
    parameter set, validation targets, packaged data rows, clinic rules."""
    from ketasim.clinic.dose_check import DEFAULT_ROUTE_LIMITS, DoseLimits
    from ketasim.clinic.protocols import PROTOCOLS
    from ketasim.clinic.screening import CAUTIONS
    from ketasim.mechanism.parameters import BRANCHES, CASCADE
    from ketasim.outcomes.indications import load_indications
    from ketasim.outcomes.longterm import TOLERANCE, summarise_regimen
    from ketasim.outcomes.parameters import outcome_parameters
    from ketasim.pd.acute import AE_TABLES, acute_parameters
    from ketasim.pd.targets import load_target_data
    from ketasim.pk import DEFAULTS, list_models
    from ketasim.scales.instruments import INSTRUMENTS
    from ketasim.validation import acute_calibration
    from ketasim.validation.calibration import CALIBRATIONS
    from ketasim.validation.outcomes import ALL_TARGETS, CRPS
    from ketasim.validation.pd import ACUTE_TARGETS, PD_TARGETS
    from ketasim.validation.pk import PK_TARGETS

    out: list[tuple[str, str]] = []
    for m in list_models():
        out += [(f"{m.name}.{k}", p.source) for k, p in m.model.parameters.items()]
        out += [(f"{m.name}.{r}", e.source) for r, e in (("iiv", m.iiv), ("iov", m.iov))
                if e is not None]
        out += [(f"{m.name}.residual.{a}", r.source) for a, r in m.residual.items()]
        out += [(f"{m.name}.{d.name}", d.source) for d in m.population.distributions]
    out += [(f"default.{c}.{r.value}", why) for (c, r), (_, why) in DEFAULTS.items()]
    for name, params in (("cascade", CASCADE), ("outcomes", outcome_parameters()),
                         ("acute", acute_parameters()), ("tolerance", TOLERANCE)):
        out += [(f"{name}.{k}", p.source) for k, p in params.items()]
    for b in BRANCHES.values():
        out += [(f"branch.{b.id}", b.evidence), (f"branch.{b.id}", b.counter_evidence)]
    for key, table in AE_TABLES.items():
        out += [(f"adverse_events.{key[0]}.{k}", r.source) for k, r in table.items()]
    for regimen, history in ((CRPS, False),
                             ("0.5 mg/kg IV over 40 min twice weekly for 16 weeks", True)):
        flags = summarise_regimen(regimen, weight_kg=70, substance_use_history=history).flags
        out += [(f"risk_flag.{f.id}", f.source) for f in flags]
    data = load_target_data()
    out += [(f"targets.fu.{k}", c.fu_source) for k, c in data.compounds.items()]
    out += [(f"targets.dispute.{k}", t.dispute) for k, t in data.targets.items() if t.dispute]
    out += [(f"targets.affinity.{t}.{c}", a.source) for (t, c), a in data.rows.items()]
    for k, ind in load_indications().items():
        out += [(f"indication.{k}.{f}", getattr(ind, f)) for f in
                ("evidence", "reason", "baseline_source", "ideation_baseline_source")]
    for t in [*PK_TARGETS, *PD_TARGETS, *ACUTE_TARGETS]:
        out += [(f"target.{t.id}", t.source), (f"target.{t.id}.note", t.note)]
    out += [(f"target.{t.id}", t.source) for t in ALL_TARGETS]
    out += [(f"calibration.{k}", c.source) for k, c in CALIBRATIONS.items()]
    out += [(f"acute_statistic.{k}", text) for k, (_, text) in
            acute_calibration.TARGETS.items()]
    out += [(f"instrument.{k}", i.source) for k, i in INSTRUMENTS.items()]
    out += [(f"protocol.{k}", p.source) for k, p in PROTOCOLS.items()]
    out += [(f"caution.{k}", c.source) for k, c in CAUTIONS.items()]
    out += [(f"dose_limits.{k}", r.source) for k, r in DEFAULT_ROUTE_LIMITS.items()]
    out.append(("dose_limits", DoseLimits().source))
    return [(w, s) for w, s in out if s]


SOURCES = all_sources()


# ---- the bibliography ------------------------------------------------------------------------

def test_bibliography_is_csl_json_with_unique_well_formed_keys() -> None:
    items = csl_items()
    keys = [i["id"] for i in items]
    assert len(keys) == len(set(keys)) and len(keys) >= 100
    for item in items:
        key = item["id"]
        assert re.fullmatch(r"[a-z]{2,}(19|20)\d{2}[a-z]?|[a-z][a-z0-9]*(-[a-z0-9]+)*", key), key
        assert item["type"] in ("article-journal", "document", "software", "webpage",
                                "speech"), key
        assert item.get("title") or key in ("doherty2020", "canuso2021", "chen2022",
                                            "delsant2023", "fang2019", "robson2012",
                                            "spurny2021", "yoon2025", "zhou2021",
                                            "kheirabadi2023"), key
        if "DOI" in item:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", item["DOI"]), key
        if "PMID" in item:
            assert re.fullmatch(r"\d{6,9}", item["PMID"]), key
    # the package ships the file (package-data data/*.json)
    assert resources.files("ketasim.data").joinpath("references.json").is_file()


def test_every_record_has_a_doi_or_pmid_or_says_why_not() -> None:
    for key, rec in load_bibliography().items():
        assert rec.has_identifier or "no DOI" in rec.note, key
        assert rec.link or "no DOI" in rec.note, key
        if rec.doi:
            assert format_citation(key).endswith(f"https://doi.org/{rec.doi}"), key


def test_every_source_key_resolves_to_a_record() -> None:
    used: set[str] = set()
    for where, text in SOURCES:
        try:
            keys = Source.parse(text).keys  # strict: an unknown key-like word raises
        except CitationError as exc:
            pytest.fail(f"{where}: {exc}")
        for k in keys:
            rec = resolve(k)
            assert rec.has_identifier or "no DOI" in rec.note, (where, k)
        used |= set(keys)
    assert len(SOURCES) > 500 and len(used) >= 90
    # the few records no source string holds are cited by the risk flags and the docs
    assert set(load_bibliography()) - used <= set(), sorted(set(load_bibliography()) - used)


def test_literature_values_cite_a_work_with_its_location() -> None:
    from ketasim.mechanism.parameters import CASCADE
    from ketasim.outcomes.parameters import outcome_parameters
    from ketasim.pd.acute import acute_parameters
    from ketasim.pk import list_models
    sets = {m.name: m.model.parameters for m in list_models()}
    sets |= {"cascade": CASCADE, "outcomes": outcome_parameters(), "acute": acute_parameters()}
    for name, params in sets.items():
        for k, p in params.items():
            if p.evidence == "literature" and not k.startswith("eta_"):
                assert Source.parse(p.source).keys, f"{name}.{k}: {p.source!r}"
    # tables and figures are kept as locators: "otto2021, Table 3"
    assert Source.parse("otto2021, Table 3; fanta2015").citations[0].locator == "Table 3"
    assert [c.locator for c in Source.parse("simons2022a, Table 4 (x) [V]").citations] == \
        ["Table 4"]


def test_unknown_keys_are_typed_errors_that_name_the_key() -> None:
    with pytest.raises(CitationError, match="unknown reference key 'zarate2060'") as err:
        resolve("zarate2060")
    assert "zarate2006" in str(err.value)  # the fix names the close keys
    with pytest.raises(CitationError, match="'smith2019'"):
        Source.parse("smith2019, Table 1 [V]")
    assert Source.parse("smith2019", strict=False).keys == ()
    assert render_source("smith2019 and zarate2006") == "smith2019 and Zarate et al. 2006"


def test_full_citations_carry_authors_year_title_journal_and_doi_link() -> None:
    c = format_citation("zarate2006")
    assert c.startswith("Zarate CA Jr et al. (2006). A randomized trial of an N-methyl-D-")
    assert "Arch Gen Psychiatry 63(8):856-864" in c
    assert c.endswith("https://doi.org/10.1001/archpsyc.63.8.856")
    label = format_citation("spravato-label")
    assert "SPRAVATO (esketamine) nasal spray" in label and "no DOI" in label
    assert format_citation("zarate2012").endswith("https://pubmed.ncbi.nlm.nih.gov/22297150/")


# ---- nothing shown to users names the working notes -----------------------------------------

def test_no_source_and_no_packaged_data_file_mentions_the_working_notes() -> None:
    found = [(w, notes_in(s)) for w, s in SOURCES if notes_in(s)]
    assert not found, found[:5]
    data = resources.files("ketasim.data")
    files = [f for f in data.iterdir() if f.is_file() and not f.name.endswith(".pyc")]
    assert {"references.json", "targets.toml", "indications.toml",
            "acute_fit.json"} <= {f.name for f in files}
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert not notes_in(text), (f.name, notes_in(text)[:3])
        assert "§" not in text or f.name == "references.json", f.name


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([KETASIM, *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env=env)


def test_command_outputs_and_reports_never_mention_the_working_notes(tmp_path: Path) -> None:
    from ketasim.pk import model_names
    runs = [run_cli("models"), run_cli("references"), run_cli("references", "--json"),
            *[run_cli("model", n) for n in model_names()],
            run_cli("validate", "pd"),
            run_cli("validate", "pk", "--html", str(tmp_path / "pk.html")),
            run_cli("explain", "--regimen", "0.5 mg/kg IV over 40 min twice weekly for 2 weeks",
                    "--indication", "suicidal_ideation", "--patients", "20",
                    "--out", str(tmp_path / "explain.html"))]
    for r in runs:
        assert r.returncode == 0, (r.args, r.stderr[-500:])
        assert not notes_in(r.stdout + r.stderr), (r.args, notes_in(r.stdout + r.stderr)[:3])
    for name in ("pk.html", "explain.html"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert not notes_in(text), (name, notes_in(text)[:3])
        # the sources, shown as linked citations, and every cited work in full at the end
        assert '<section class="references">' in text and 'href="https://doi.org/10.' in text
        shown = re.findall(r'<li id="ref-([^"]+)">', text)
        assert len(shown) >= 5 and all(k in load_bibliography() for k in shown)
    # a model's page starts with its paper's full citation and DOI link
    flint = run_cli("model", "flint_2017").stdout
    assert "https://doi.org/10.1111/pan.13239" in flint.replace("\n", "")


def test_references_command_prints_one_work_lists_all_and_refuses_unknown_keys() -> None:
    one = run_cli("references", "zarate2006")
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip() == format_citation("zarate2006")
    assert "https://doi.org/10.1001/archpsyc.63.8.856" in one.stdout
    item = json.loads(run_cli("references", "su2023", "--json").stdout)
    assert item["DOI"] == "10.1093/ijnp/pyad014" and item["PMID"] == "36966411"
    listing = run_cli("references")
    assert listing.returncode == 0 and "zarate2006" in listing.stdout
    assert len(json.loads(run_cli("references", "--json").stdout)) == len(load_bibliography())
    bad = run_cli("references", "zarate2060")
    assert bad.returncode == 2 and bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown reference key 'zarate2060'" in lines[0]
    assert "Traceback" not in bad.stderr


def test_explain_report_labels_every_axis_with_time_in_days(tmp_path: Path,
                                                           monkeypatch) -> None:
    from ketasim.report import outcomes as rep
    labels: list[tuple[str, str]] = []
    original = rep._png

    def record(fig):
        labels.extend((ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes)
        return original(fig)

    monkeypatch.setattr(rep, "_png", record)
    path = rep.explain("0.5 mg/kg IV over 40 min", "trd", tmp_path / "e.html", n=20)
    assert len(labels) >= 7
    for x, y in labels:
        assert x == rep.DAYS and "days" in x
        assert y.strip(), labels
    text = path.read_text(encoding="utf-8")
    assert "Moghaddam et al. 1997" in text and "ref-moghaddam1997" in text


# ---- web pages --------------------------------------------------------------------------------

def _csrf(c, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def test_web_pages_cite_the_bibliography_and_never_the_working_notes(app) -> None:  # noqa: F811
    from fastapi.testclient import TestClient

    from ketasim.clinic.screening import CONDITIONS
    from ketasim.storage.models import Patient
    pages: dict[str, str] = {}
    anon = client(app)
    pages["consult"] = anon.get("/consult").text
    for k, condition in enumerate(CONDITIONS):  # one address each (the public rate limit)
        c = TestClient(app, base_url="https://testserver", follow_redirects=False,
                       client=(f"198.51.100.{k + 1}", 4000))
        r = c.post("/consult", data={
            "csrf_token": _csrf(c, "/consult"), "condition": condition,
            "caution": ["hypertension", "pregnancy", "sedatives"], "name": "Pat",
            "contact": "555-0100", "consent": "yes",
            **{f"phq9_{i}": "1" for i in range(1, 10)},
            **{f"gad7_{i}": "0" for i in range(1, 8)}})
        assert r.status_code == 200, (condition, r.text[:300])
        pages[f"consult:{condition}"] = r.text
    trd = pages["consult:depression"]
    assert 'href="https://doi.org/10.1001/archpsyc.63.8.856"' in trd  # Zarate 2006 in full
    assert "SPRAVATO (esketamine) nasal spray, US prescribing information" in trd
    assert "Arch Gen Psychiatry 63(8):856-864" in trd
    assert "zarate2006" not in trd.split("<main", 1)[1]  # keys become citations
    with app.state.sessions() as db:
        pid = db.scalar(select(Patient.id).where(Patient.display_name == "Demo Patient A"))
    pr = client(app)
    login(pr, "prescriber")
    r = pr.post(f"/patients/{pid}/plans", data={"csrf_token": _csrf(pr, f"/patients/{pid}"),
                                               "protocol": "iv_induction",
                                               "indication": "trd", "weight_kg": "72"})
    assert r.status_code == 303, r.text[:300]
    pages["patient"] = pr.get(f"/patients/{pid}").text
    assert "Phillips et al. 2019" in pages["patient"]
    assert "https://doi.org/10.1176/appi.ajp.2018.18070834" in pages["patient"]
    pages["patients"] = pr.get("/patients").text
    pages["consultations"] = pr.get("/consultations").text
    nurse = client(app)
    login(nurse, "nurse")
    r = nurse.post(f"/patients/{pid}/sessions",
                   data={"csrf_token": _csrf(nurse, "/patients"), "compound": "racemic"})
    assert r.status_code == 303, r.text[:300]
    pages["session"] = nurse.get(r.headers["location"]).text
    admin = client(app)
    login(admin, "administrator")
    pages["admin"] = admin.get("/admin").text
    assert "https://doi.org/10.1001/jamapsychiatry.2017.0080" in pages["admin"]  # sanacora2017
    for name, page in pages.items():
        assert not notes_in(page), (name, notes_in(page)[:3])
    assert cited_keys([pages["admin"]], strict=False)  # the limits JSON names its keys
