"""Retry policy for steps that talk to S3 or the submissions database.

Transient errors (a restarted server, a dropped connection) are retried with exponential backoff
and jitter: 1, 2, 4 s. A step that still fails fails its run and leaves the batch pending; the
sensor's recovery requests it again later.
"""

import dagster as dg

IO_RETRY = dg.RetryPolicy(
    max_retries=3, delay=1.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
