"""File formats: NONMEM datasets as NM-TRAN reads them, NONMEM output files, ketasim CSV.

>>> from ketasim.io import parse_input
>>> [i.label for i in parse_input("ID TIME AMT DV=CONC")]
['ID', 'TIME', 'AMT', 'DV']
"""

from ketasim.io.nmtran import read_nonmem_csv, write_nonmem_csv
from ketasim.io.nonmem import (
    ADVAN_DEFAULTS,
    Condition,
    InputItem,
    NonmemControl,
    NonmemDataset,
    parse_condition,
    parse_input,
    read_nonmem,
    read_nonmem_control,
)
from ketasim.io.nonmem_output import (
    EXT_ROWS,
    Estimates,
    ExtTable,
    NonmemTable,
    PhiTable,
    final_estimates,
    read_ext,
    read_phi,
    read_table,
    read_tables,
)

__all__ = [
    "ADVAN_DEFAULTS", "EXT_ROWS", "Condition", "Estimates", "ExtTable", "InputItem",
    "NonmemControl", "NonmemDataset", "NonmemTable", "PhiTable", "final_estimates",
    "parse_condition", "parse_input", "read_ext", "read_nonmem", "read_nonmem_control",
    "read_nonmem_csv", "read_phi", "read_table", "read_tables", "write_nonmem_csv",
]
