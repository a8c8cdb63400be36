"""Clinic domain rules (pure, no I/O): safe number entry, dose-range checking with soft and
hard stops, overrides, and the monitored-session rules. The web app (issue 6) builds on these.
"""
