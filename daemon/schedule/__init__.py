"""The station's scheduler (issue 15): its own clock for the regular jobs regulation art. 11 and
the nightly checks need — the verify slice, the retention plan, the audit chain check; backup
and reports hang on it the same way.

- ``jobs``: the one declarative job table (name, config key of its cron, the library call,
  the counts it reports);
- ``runs``: the record of runs and job alerts in the catalog, and which job was missed (from
  that record, never from APScheduler's in-memory store, which forgets);
- ``lock``: one ``flock`` per job under ``<data-dir>/locks/``, taken by the daemon and by
  ``evidock jobs run`` alike, so a job never runs twice at once; it dies with its holder;
- ``scheduler``: running one job (lock, wait for offloads, record, audit) and the APScheduler
  ``BackgroundScheduler`` inside ``evidock run`` with the catch-up at start.

May import: errors, clock, proc, i18n, config, catalog, evidence, cases (the jobs' library
calls). Nothing here imports the dock, the CLI or the drivers.
"""
