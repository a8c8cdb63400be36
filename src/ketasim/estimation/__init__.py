"""This patient's parameters and forecast from their own data (individual Bayesian
estimation with the population model as the prior): :mod:`.patient` reads the record,
:mod:`.individual` fits it, :mod:`.pk` estimates PK random effects from drug levels,
:mod:`.forecast` forecasts the course under a plan. See docs/estimation.md."""
