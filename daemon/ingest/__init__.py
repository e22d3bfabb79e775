"""Offloading a folder or a recorder volume into the store: the volume walk (``volume``), the
per-file stages (``stages``), the one pipeline runner every stage list runs on (``pipeline``),
and one whole offload with its session (``offload``).

May import ``daemon.evidence``, ``daemon.catalog`` and the lower modules; what happens after a
footage row is recorded (filing, media jobs) is hooked in by ``daemon.context``, not imported here.
"""
