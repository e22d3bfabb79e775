"""The evidence itself: the object store, staging of partial transfers, copying with hashes,
the read-only scrub (``verify``) and the hash-chained audit log (``audit``, its reports ``auditlog``).

Nothing outside this package knows whether an object lies on a local disk or in a bucket: callers
ask the ``ObjectStore`` interface by SHA-256. May import ``daemon.errors``, ``daemon.clock``,
``daemon.proc``, ``daemon.crashpoints``, ``daemon.config`` and ``daemon.catalog``; never ingest,
dock, media, cases or the CLI.
"""
