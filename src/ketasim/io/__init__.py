"""File formats: NONMEM-style CSV datasets."""

from ketasim.io.nmtran import read_nonmem_csv, write_nonmem_csv

__all__ = ["read_nonmem_csv", "write_nonmem_csv"]
