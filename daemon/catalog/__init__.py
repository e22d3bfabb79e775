"""The SQLite catalog: the connection and its transactions (``db``), the whole schema as an
ordered list of migrations (``schema``), and the only SQL of the tables every part shares —
footage, devices, sessions, sightings (``sessions``, ``footage``, ``devices``) — and what kind of
file a stored file is (``kinds``).

May import ``daemon.errors``, ``daemon.clock``, ``daemon.proc``, ``daemon.evidence.audit`` (each
change it records carries its audit entry in the same transaction) and ``drivers.base`` (the
clock-trust rule); never ingest, dock, media,
cases or the CLI.
"""
