"""The Dagster layer: partitions, resources, round assets, the scoring graph, the sensor, jobs.

Thin on purpose: the work is done by ``numerai_assets.batch`` and ``numerai_assets.scoring``.
"""
