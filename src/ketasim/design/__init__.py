"""Regimen search under constraints: :mod:`.recommend` (the next sessions for one patient)
and :mod:`.population` (a maintenance schedule for a virtual population). See
docs/estimation.md."""
