"""The ``numerai-assets`` command: one sub-command per module in this package."""

from numerai_assets.cli.main import main

__all__ = ["main"]
