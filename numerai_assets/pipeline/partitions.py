"""Rounds as dynamic partitions: the sensor adds a round when its first submission arrives."""

import dagster as dg

rounds = dg.DynamicPartitionsDefinition(name="rounds")


def round_of(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> int:
    """The run's round, from its partition key."""
    key = context.partition_key
    try:
        return int(key)
    except ValueError:
        raise ValueError(f"partition key {key!r} is not a round number") from None
