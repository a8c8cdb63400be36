"""read_nonmem reads datasets as NM-TRAN does; every refusal names the line, the item and what
NONMEM would do (issue #15 item 1). Real public runs: test_nonmem_data_public.py."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketasim.engine import simulate
from ketasim.errors import DataError, EventError, KetasimError
from ketasim.io import (
    NonmemDataset,
    parse_condition,
    parse_input,
    read_nonmem,
    read_nonmem_control,
    read_nonmem_csv,
)
from nmtests_model import nmtests_model

INPUT = "ID TIME EVID AMT CMT DV"
TEXT = "1,0,1,100,1,.\n1,1,0,.,2,3.5\n1,4,0,.,2,2.1\n2,0,1,50,1,.\n2,2,0,.,2,1.7\n"


def read(text: str, input: str | None = INPUT, **kw) -> NonmemDataset:
    return read_nonmem(io.StringIO(text), input, **kw)


def refused(exc_type: type[KetasimError], item: str, line: int, *words: str):
    """Context manager: the error has the class, names the item, the line and the words."""
    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(exc_type)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            err = self.info.value
            assert err.field == item, str(err)
            assert re.match(rf"line {line}\b", err.problem), str(err)  # names the record
            for w in words:
                assert w in str(err), (w, str(err))
            return handled
    return _Check()


# ----------------------------------------------------------------------------- separators
@pytest.mark.parametrize("sep", [",", " ", "\t", "  ", ", ", " ,"])
def test_comma_blank_and_tab_separated_files_read_the_same(sep: str) -> None:
    text = TEXT.replace(",", sep)
    if sep.strip() == "":
        text = text.replace(" . ", " 0 ").replace(" .\n", " 0\n")  # blanks: no empty items
    ds = read(text)
    ref = read(TEXT)
    assert np.array_equal(ds.data.to_numpy(), ref.data.to_numpy())
    assert ds.events.evid.tolist() == [1, 0, 0, 1, 0]


def test_dots_empty_items_fortran_exponents_short_and_long_records() -> None:
    ds = read("1,0,1,1.0D+02,1,,EXTRA,TEXT\n1,2.5E0,0,.,2\n")
    assert ds.data["AMT"].tolist() == [100.0, 0.0]
    assert ds.data["DV"].tolist() == [0.0, 0.0]  # empty and missing trailing items are null
    assert ds.raw.shape == (2, 6)  # items beyond $INPUT are not read


# ----------------------------------------------------------------------------- IGNORE=c
def test_comment_line_before_header_with_ignore_at() -> None:
    text = "# exported 2024-01-01 by a script\nID,TIME,EVID,AMT,CMT,DV\n" + TEXT
    ds = read(text, ignore="@")
    assert ds.n_records == 5 and ds.n_lines_ignored == 2
    assert ds.line.tolist() == [3, 4, 5, 6, 7]
    # without $INPUT the header gives the labels (the last skipped line made of labels)
    assert list(read(text, None, ignore="@").data.columns) == INPUT.split()


def test_header_that_the_ignore_character_does_not_skip_is_refused() -> None:
    text = "ID,TIME,EVID,AMT,CMT,DV\n" + TEXT
    with refused(DataError, "ID", 1, "'ID', not a number", "NM-TRAN stops", "ignore='@'"):
        read(text)  # IGNORE=# (the default) does not skip it; NONMEM stops there too
    with refused(DataError, "dataset", 1, "header", "IGNORE=#", "ignore='@'"):
        read(text, None)


def test_ignore_c_skips_only_lines_with_c_in_column_one() -> None:
    text = "C,ID,TIME,EVID,AMT,CMT,DV\n.,1,0,1,100,1,.\nC,1,1,0,.,2,99\n.,1,2,0,.,2,3.1\n"
    ds = read(text, "C " + INPUT, ignore="C")
    assert ds.n_records == 2 and ds.column("DV").tolist() == [0.0, 3.1]
    # a comment line that does not start with C is a data record for IGNORE=C: NONMEM stops
    with refused(DataError, "C", 1, "'#'", "IGNORE=C", "ignore='@'"):
        read("# note\n" + text, "C " + INPUT, ignore="C")
    # IGNORE=@ : first non-blank character a letter, # or @ (indented headers too)
    assert read("  @ID TIME\n" + text.replace("C,1,1", "c,1,1"), "C " + INPUT,
                ignore="'@'").n_records == 2


def test_a_blank_line_inside_the_data_is_refused_trailing_ones_are_fine() -> None:
    assert read(TEXT + "\n\n").n_records == 5
    with refused(DataError, "dataset", 3, "blank", "BLANKOK"):
        read("1,0,1,100,1,.\n1,1,0,.,2,3.5\n\n1,4,0,.,2,2.1\n")


# ----------------------------------------------------------------------------- $INPUT
def test_input_names_items_by_position_renames_and_drops() -> None:
    text = "STUDY,SUBJ,HOURS,EVENT,DOSE,COMP,CONC,WEIGHT\n" + "\n".join(
        f"7,{r},80" for r in TEXT.strip().splitlines()) + "\n"
    ds = read(text, "STUDY=DROP ID TIME EVID AMT CMT CONC=DV WT", ignore="@",
              covariates={"wt": "WT"})
    assert list(ds.data.columns) == ["ID", "TIME", "EVID", "AMT", "CMT", "DV", "WT"]
    assert ds.column("CONC").tolist() == ds.dv.tolist() == [0.0, 3.5, 2.1, 0.0, 1.7]
    assert ds.events.covariates["wt"].tolist() == [80.0] * 5
    assert ds.raw["STUDY"].tolist() == ["7"] * 5  # dropped items stay readable as text
    items = parse_input("$INPUT ID TIME DV=CONC ; comment\n WT=DROP SKIP DROP=X AMT=DOSE")
    assert [(i.label, i.synonym, i.dropped) for i in items] == [
        ("ID", None, False), ("TIME", None, False), ("DV", "CONC", False),
        ("WT", None, True), ("SKIP", None, True), ("X", None, True), ("AMT", "DOSE", False)]


def test_header_column_ss_that_the_model_renames_is_not_read_as_ss() -> None:
    text = "ID,TIME,AMT,SS,DV\n1,0,100,99,.\n1,2,.,99,4.2\n"
    ds = read(text, "ID TIME AMT SCR DV", ignore="@")  # $INPUT calls the 4th item SCR
    assert ds.events.ss.tolist() == [0, 0] and ds.column("SCR").tolist() == [99.0, 99.0]
    with refused(EventError, "SS", 2, "SS 99", "NONMEM stops", "another label in $INPUT"):
        read(text, None, ignore="@")  # by the header, SS is SS: NONMEM would refuse 99


def test_bad_input_records() -> None:
    with pytest.raises(DataError, match="DV: is the label of data items 3 and 4"):
        parse_input("ID TIME DV DV")
    with pytest.raises(DataError, match=r"\$INPUT: item 2"):
        parse_input("ID 2TIME")
    with pytest.raises(DataError, match="TIME: is not a data item of \\$INPUT"):
        read("1,0\n", "ID HOURS")
    with pytest.raises(DataError, match="ID: is not a data item"):
        read("1,0\n", "SUBJ TIME")
    with pytest.raises(DataError, match="no header line and no input"):
        read("1,0\n", None)


# ----------------------------------------------------------------------------- numbers
def test_text_in_a_data_item_names_line_and_item() -> None:
    with refused(DataError, "AMT", 2, "item 4 is 'ten'", "NM-TRAN stops", "AMT=DROP"):
        read("1,0,1,100,1,.\n1,1,1,ten,1,.\n")
    with refused(DataError, "TIME", 1, "'08:30'", "clock times"):
        read("1,08:30,0,.,2,1\n")
    with refused(DataError, "DATE", 1, "'2022-06-22'", "DATE=DROP"):
        read("1,2022-06-22,0,0\n", "ID DATE TIME DV")
    assert read("1,2022-06-22,0,0\n", "ID DATE=DROP TIME DV").n_records == 1
    for bad in ("nan", "inf"):
        with refused(DataError, "DV", 1, f"'{bad}'"):
            read(f"1,0,0,.,2,{bad}\n")


# ----------------------------------------------------------------------------- IGNORE/ACCEPT
FLAGS = "1,0,0,1.0\n2,0,0,1\n3,0,0,0\n4,0,0,2\n"


def test_ignore_and_accept_lists() -> None:
    def ids(**kw) -> list[float]:
        return read(FLAGS, "ID TIME DV FLAG", **kw).column("ID").tolist()

    assert ids(ignore="FLAG.EQ.1") == [1, 3, 4]  # .EQ. compares text: '1.0' is not '1'
    assert ids(ignore="FLAG.EQN.1") == [3, 4]  # .EQN. compares numbers
    assert ids(ignore="(FLAG.GT.0.5, ID==4)") == [3]  # any condition ignores
    assert ids(ignore=["FLAG.NEN.0"]) == [3]
    assert ids(ignore="IGNORE=(FLAG/=1)") == [2]
    assert ids(accept="FLAG>=1") == [1, 2, 4]
    assert ids(accept=["FLAG.GE.1", "ID.LT.4"]) == [1, 2]  # every condition must hold
    assert ids(ignore="FLAG='1'") == [1, 3, 4]
    # dropped items can be used in conditions
    assert read(FLAGS, "ID TIME DV FLAG=DROP", ignore="FLAG.NEN.0").column("ID").tolist() == [3]
    assert parse_condition("C='C'").value == "C"


def test_bad_ignore_and_accept_options() -> None:
    with pytest.raises(DataError, match="ACCEPT: IGNORE=\\(list\\) and ACCEPT=\\(list\\)"):
        read(FLAGS, "ID TIME DV FLAG", ignore="ID.EQ.1", accept="ID.EQ.2")
    with pytest.raises(DataError, match="WT: is used in the condition"):
        read(FLAGS, "ID TIME DV FLAG", ignore="WT.GT.70")
    with pytest.raises(DataError, match=r"\.AND\./\.OR\."):
        read(FLAGS, "ID TIME DV FLAG", ignore="ID.EQ.1.AND.FLAG.EQ.1")
    with pytest.raises(DataError, match="two ignore characters"):
        read(FLAGS, "ID TIME DV FLAG", ignore=["@", "C"])
    with pytest.raises(DataError, match="not a number"):
        parse_condition("DV.GT.high")
    with refused(DataError, "FLAG", 3, "'x' is not a number", "FLAG >"):
        read("1,0,0,0\n2,0,0,1\n3,0,0,x\n", "ID TIME DV FLAG", ignore="FLAG.GT.0")


# ----------------------------------------------------------------------------- compartments
def test_without_cmt_doses_go_to_the_default_dose_compartment() -> None:
    text = "1,0,100,.\n1,1,.,3.5\n"
    ds = read(text, "ID TIME AMT DV")
    assert ds.events.evid.tolist() == [1, 0] and ds.events.cmt.tolist() == [1, 0]
    ds = read(text, "ID TIME AMT DV", default_dose_cmt=1, default_obs_cmt=2, n_cmt=2)
    assert ds.events.cmt.tolist() == [1, 2]
    # CMT 0 in a CMT column is the default as well
    assert read("1,0,1,100,0,.\n1,1,0,.,0,2\n", default_obs_cmt=2).events.cmt.tolist() == [1, 2]
    # and the doses simulate: PREDPP's ADVAN2 sends them to the depot
    r = simulate(nmtests_model(), ds.events)
    assert r["cp"][1] > 0


def test_impossible_compartments_are_refused_with_the_model() -> None:
    model = nmtests_model()  # 1 depot, 2 central
    with refused(EventError, "CMT", 2, "observation of compartment 7", "NONMEM stops",
                 "1 depot, 2 central"):
        read("1,0,1,100,1,.\n1,1,0,.,7,3\n", model=model)
    with refused(EventError, "CMT", 2, "output compartment", "no output compartment"):
        read("1,0,1,100,1,.\n1,1,0,.,3,3\n", n_cmt=2)
    with refused(EventError, "CMT", 1, "dose into compartment 4", "NONMEM stops"):
        read("1,0,1,100,4,.\n", n_cmt=2)
    with refused(EventError, "CMT", 2, "turns compartment 2 off", "cannot switch"):
        read("1,0,1,100,1,.\n1,1,2,.,-2,.\n")
    with refused(EventError, "CMT", 2, "observes compartment 2 and then turns it off"):
        read("1,0,1,100,1,.\n1,1,0,.,-2,3\n")
    with refused(EventError, "CMT", 1, "not a whole number"):
        read("1,0,1,100,1.5,.\n")


# ----------------------------------------------------------------------------- TIME resets
RESET = ("1,0,1,100,1,.\n1,2,0,.,2,1\n1,24,0,.,2,1\n"
         "1,0,4,100,1,.\n1,2,0,.,2,1\n1,24,0,.,2,1\n"
         "1,0,3,.,1,.\n1,1,1,50,1,.\n1,3,0,.,2,1\n")


def test_time_may_start_again_on_a_reset_record() -> None:
    ds = read(RESET)
    assert ds.data["TIME"].tolist() == [0, 2, 24, 0, 2, 24, 0, 1, 3]  # the file's TIME
    assert ds.time_offset.tolist() == [0, 0, 0, 24, 24, 24, 48, 48, 48]
    assert ds.events.time.tolist() == [0, 2, 24, 24, 26, 48, 48, 49, 51]
    assert any("reset" in n for n in ds.notes)


def test_a_period_after_a_reset_simulates_like_a_new_subject() -> None:
    model = nmtests_model()
    joined = simulate(model, read(RESET).events)["cp"]
    parts = [simulate(model, read(t).events)["cp"] for t in (
        "1,0,1,100,1,.\n1,2,0,.,2,1\n1,24,0,.,2,1\n",
        "1,0,1,100,1,.\n1,2,0,.,2,1\n1,24,0,.,2,1\n",  # EVID 4: reset, then the same dose
        "1,0,3,.,1,.\n1,1,1,50,1,.\n1,3,0,.,2,1\n")]
    assert np.allclose(joined, np.concatenate(parts), rtol=1e-12, atol=1e-12)


def test_time_going_back_without_a_reset_is_refused() -> None:
    with refused(EventError, "TIME", 3, "TIME 1", "earlier than TIME 2 on line 2",
                 "reset record (EVID 3 or 4)"):
        read("1,0,1,100,1,.\n1,2,0,.,2,1\n1,1,0,.,2,1\n")
    with refused(EventError, "ID", 3, "ID 1 appears again", "new individual"):
        read("1,0,1,100,1,.\n2,0,0,.,2,1\n1,5,0,.,2,1\n")


def test_event_items_nonmem_refuses_name_the_line() -> None:
    with refused(EventError, "EVID", 2, "EVID 7", "NONMEM stops"):
        read("1,0,1,100,1,.\n1,1,7,.,2,1\n")
    with refused(EventError, "AMT", 1, "dose of -5", "NONMEM stops"):
        read("1,0,1,-5,1,.\n")
    with refused(EventError, "TIME", 1, "negative", "NONMEM accepts"):
        read("1,-1,0,.,2,1\n")
    with refused(EventError, "II", 1, "ADDL 2 with II 0", "NONMEM stops"):
        read("1,0,1,10,1,0,2\n", "ID TIME EVID AMT CMT II ADDL")
    with refused(EventError, "SS", 1, "SS 3", "7.4"):
        read("1,0,1,10,1,3,12\n", "ID TIME EVID AMT CMT SS II")
    with refused(EventError, "RATE", 1, "RATE -3", "NONMEM stops"):
        read("1,0,1,10,1,-3\n", "ID TIME EVID AMT CMT RATE")
    with refused(EventError, "II", 1, "steady-state dose"):
        read("1,0,1,10,1,1,0\n", "ID TIME EVID AMT CMT SS II")  # mapped from the event table


# ----------------------------------------------------------------------------- control stream
def test_control_stream_defaults_from_advan_and_model() -> None:
    ctl = read_nonmem_control(io.StringIO(
        "$PROBLEM one\n$INPUT C ID TIME DV=CONC AMT ; doses in mg\n"
        "$DATA 'my data.csv' IGNORE=C IGN=(ID.EQ.9) ACCEPT=(TIME.LT.100)\n"
        "$SUBROUTINES ADVAN13 TOL=9\n$MODEL COMP=(DEPOT) COMP=(CENTRAL DEFOBS) COMP(PERI)\n"
        "$PROBLEM two\n$INPUT ID TIME DV\n$DATA two.csv\n$SUB ADVAN4\n"), data_dir="/data")
    assert ctl.data_file.as_posix() == "/data/my data.csv" and ctl.problem == "one"
    assert ctl.ignore == ("C", "ID.EQ.9") and ctl.accept == ("TIME.LT.100",)
    assert (ctl.advan, ctl.default_dose_cmt, ctl.default_obs_cmt, ctl.n_cmt) == (13, 1, 2, 3)
    assert [i.label for i in ctl.input] == ["C", "ID", "TIME", "DV", "AMT"]
    two = read_nonmem_control(io.StringIO(
        "$PROBLEM one\n$INPUT ID\n$DATA a.csv\n$PROBLEM two\n$INPUT ID TIME DV\n$DATA two.csv\n"
        "$SUB ADVAN4\n"), problem=2)
    assert (two.data_file.name, two.default_obs_cmt, two.n_cmt) == ("two.csv", 2, 3)
    with pytest.raises(DataError, match="TRANSLATE"):
        read_nonmem_control(io.StringIO("$INPUT ID TIME\n$DATA a.csv TRANSLATE=(TIME/24)\n"))
    with pytest.raises(DataError, match="Fortran format"):
        read_nonmem_control(io.StringIO("$INPUT ID TIME\n$DATA a.dat (2F8.0)\n"))
    assert read_nonmem_control(io.StringIO("$INPUT ID TIME\n$DATA a\n$SUBS ADVAN2\n")).advan == 2
    with pytest.raises(DataError, match="RECORDS"):
        read_nonmem_control(io.StringIO("$INPUT ID TIME\n$DATA a.csv RECORDS=20\n"))
    with pytest.raises(DataError, match=r"\$DATA: record is missing"):
        read_nonmem_control(io.StringIO("$INPUT ID TIME\n"))
    with pytest.raises(DataError, match="problems"):
        read_nonmem_control(io.StringIO("$PROB a\n$INPUT ID\n$DATA x\n"), problem=3)


def test_control_stream_reads_its_dataset(tmp_path) -> None:
    (tmp_path / "run1.mod").write_text(
        "$PROB x\n$INPUT ID TIME AMT CONC=DV WT=DROP\n$DATA data/d.csv IGNORE=@\n"
        "$SUBROUTINES ADVAN2 TRANS2\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("ID,TIME,AMT,DV,WT\n1,0,10,.,70\n1,1,.,2.5,70\n")
    ds = read_nonmem_control(tmp_path / "run1.mod").read_data()
    assert ds.events.cmt.tolist() == [1, 2] and ds.dv.tolist() == [0.0, 2.5]
    with pytest.raises(DataError, match="data_dir"):
        read_nonmem_control(tmp_path / "run1.mod", data_dir=tmp_path).read_data()


# ----------------------------------------------------------------------------- ketasim CSV
def test_read_nonmem_csv_reads_blank_separated_files_and_skips_comment_lines() -> None:
    table, extra = read_nonmem_csv(io.StringIO(
        "# made by hand\n\nID TIME EVID AMT CMT DV\n1 0 1 100 1 .\n1 1 0 . 2 3.1\n"))
    assert table.evid.tolist() == [1, 0] and list(extra.columns) == ["DV"]
    with pytest.raises(DataError, match="read_nonmem"):
        read_nonmem_csv(io.StringIO("# study 1\nSUBJ,HOURS,DOSE\n1,0,5\n"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["1", "0", ".", "", "-1", "x", "2.5", "3", "4", "1e400",
                                          "nan", "C", "@", "#", "99", "1D2"]),
                         min_size=1, max_size=8), min_size=0, max_size=6),
       st.sampled_from([",", " ", "\t"]),
       st.sampled_from([None, "@", "C", ["@", "ID.EQ.2"], "FLAG.GT.1"]))
def test_the_reader_raises_only_typed_errors(rows, sep, ignore) -> None:
    text = "\n".join(sep.join(r) for r in rows) + "\n"
    try:
        ds = read(text, "ID TIME EVID AMT CMT SS II FLAG", ignore=ignore, n_cmt=2)
    except KetasimError:
        return
    assert ds.n_records == ds.events.n_records == len(ds.data)
