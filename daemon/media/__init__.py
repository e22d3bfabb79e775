"""What people watch instead of the original: running ffmpeg safely (``ffmpeg``), probing
(``probe``), encoders (``encoders``), the derived-file layout (``derived``), the stages of one media
job (``stages``), and the job queue with its claims and listings (``queue``, ``claims``,
``listing``).

May import ``daemon.evidence``, ``daemon.catalog``, the one pipeline runner (``daemon.ingest.pipeline``,
which imports nothing of evidock's) and the lower modules; never dock, cases or the CLI.
"""
