"""Cases and what article 11 and 16 ask of them: case fields (``fields``), reading cases
(``records``), opening and changing them (``register``), filing footage to them (``filing``, by the rules of
``filing_rules``, recordings split in chunks kept together by ``segments``; tracks and logs with the
media they overlap: ``companions``), their enforcement activities (``activities``), the case CSV
import (``csvimport``; activities: ``activity_import``), the 2-day report and filing columns (``reports``), the footage
listing with its filing and media columns (``listing``), retention
with legal hold (``retention``) and the review ledger (``review``).

May import ``daemon.evidence``, ``daemon.catalog``, ``daemon.media`` (derived files, listing columns)
and the lower modules;
never dock or the CLI.
"""
