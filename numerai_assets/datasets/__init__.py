"""Round datasets: reading and checking them, and making synthetic ones for demos and benchmarks."""

from numerai_assets.datasets.round_dataset import DatasetError, RoundDataset, load_round_dataset

__all__ = ["DatasetError", "RoundDataset", "load_round_dataset"]
