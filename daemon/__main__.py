"""``python -m daemon`` runs the evidock CLI (what the tests' subprocesses use)."""

from daemon.cli import main

main()
