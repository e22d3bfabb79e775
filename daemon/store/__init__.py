"""The S3 evidence store (issue 17): a bucket with Object Lock as the station's system of record.

``daemon.store.uploads`` is the persistent upload queue from local staging (``objects/`` in the
data dir) to the bucket; ``daemon.store.status`` what ``evidock store status`` and ``evidock
status`` show of it. The dock wipes a recorder only once its files are stored in the bucket
(``daemon.dock.check.wipe_stored`` with ``in_bucket``). ``daemon.store.snapshot`` puts catalog
snapshots into the bucket; ``daemon.store.reindex`` (with ``daemon.store.replay``) rebuilds a lost
station's catalog from the bucket alone.
"""
