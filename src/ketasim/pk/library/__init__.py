"""One module per publication; each has ``build() -> LibraryModel``."""
