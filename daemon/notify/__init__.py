"""Alerts that reach a person (issue 18): the outbox the alerts write (``daemon.catalog.outbox``)
is worked here — messages in both languages (``text``), the two channels, SMTP e-mail and a
webhook (``channels``), the sender thread of ``evidock run`` with its retries and daily digests
(``sender``), and what ``evidock notify test|status|list`` show (``status``).

May import the catalog, the config, ``daemon.i18n``, ``daemon.clock`` and ``daemon.display``;
never ingest, dock, media, cases or the CLI: an alert is written where it is raised, and only
read back here.
"""
