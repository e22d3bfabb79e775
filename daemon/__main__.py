"""``python -m daemon`` runs the evidock CLI (what the tests' subprocesses use)."""

from .cli import main

main()
