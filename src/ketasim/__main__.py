"""``python -m ketasim`` runs the command line."""

from ketasim.cli.app import main

main()
