"""File formats: NONMEM datasets as NM-TRAN reads them, NONMEM output files, ketasim CSV.

>>> from ketasim.io import parse_input
>>> [i.label for i in parse_input("ID TIME AMT DV=CONC")]
['ID', 'TIME', 'AMT', 'DV']
"""

from typing import TYPE_CHECKING

from ketasim import _lazy

if TYPE_CHECKING:
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

_EXPORTS = {
    "read_nonmem_csv": "ketasim.io.nmtran",
    "write_nonmem_csv": "ketasim.io.nmtran",
    "ADVAN_DEFAULTS": "ketasim.io.nonmem",
    "Condition": "ketasim.io.nonmem",
    "InputItem": "ketasim.io.nonmem",
    "NonmemControl": "ketasim.io.nonmem",
    "NonmemDataset": "ketasim.io.nonmem",
    "parse_condition": "ketasim.io.nonmem",
    "parse_input": "ketasim.io.nonmem",
    "read_nonmem": "ketasim.io.nonmem",
    "read_nonmem_control": "ketasim.io.nonmem",
    "EXT_ROWS": "ketasim.io.nonmem_output",
    "Estimates": "ketasim.io.nonmem_output",
    "ExtTable": "ketasim.io.nonmem_output",
    "NonmemTable": "ketasim.io.nonmem_output",
    "PhiTable": "ketasim.io.nonmem_output",
    "final_estimates": "ketasim.io.nonmem_output",
    "read_ext": "ketasim.io.nonmem_output",
    "read_phi": "ketasim.io.nonmem_output",
    "read_table": "ketasim.io.nonmem_output",
    "read_tables": "ketasim.io.nonmem_output",
}
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS)
