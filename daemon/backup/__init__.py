"""Backups of the evidence store and the catalog to other disks and S3 buckets (issue 16)."""
