"""Where Dagster keeps outputs: the round assets (S3 or a local folder) and the values passed
between the ops of one run (memory). Neither has a config field: the place comes from the
deployment (``DAGSTER_IO_BUCKET``, ``DAGSTER_IO_PREFIX``, ``NUMERAI_ASSETS_HOME``), read when a
run starts, so run config cannot send a run's pickles anywhere else (it is refused at launch).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

from numerai_assets.files import atomic_path, s3_client_from_settings
from numerai_assets.settings import Settings


class AtomicPickleFilesystemIOManager(PickledObjectFilesystemIOManager):
    """Dagster's pickling filesystem IO manager, writing each value whole or not at all.

    Dagster's own opens the final path for writing and pickles into it, so a run loading the
    round's data while another run rewrites it reads a truncated pickle (``EOFError: Ran out of
    input``), and a crash mid-write leaves one behind. Here the pickle goes to a temporary file
    in the same folder, renamed over the final path when complete (``os.replace``, atomic on one
    filesystem): a reader opens the old file or the new one, never part of one.
    """

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: Any) -> None:
        with atomic_path(path) as partial:
            super().dump_to_path(context, obj, partial)


class RoundAssetsIOManager(dg.ConfigurableIOManagerFactory):
    """The round assets' storage: ``s3://$DAGSTER_IO_BUCKET/$DAGSTER_IO_PREFIX/...`` when the
    bucket is set (any worker then loads a round's data and clusters), else
    ``$NUMERAI_ASSETS_HOME/dagster_storage``. S3 goes through the project's one S3 client
    (:func:`~numerai_assets.files.s3_client_from_settings`); dagster_aws and boto3 are imported
    only then."""

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        settings = Settings.from_env()
        if settings.io_bucket:
            from dagster_aws.s3.io_manager import PickledObjectS3IOManager

            # An S3 object appears only once its upload completes: readers see whole values.
            return PickledObjectS3IOManager(
                s3_bucket=settings.io_bucket,
                s3_session=s3_client_from_settings(settings),
                s3_prefix=settings.io_prefix,
            )
        return AtomicPickleFilesystemIOManager(base_dir=str(settings.home / "dagster_storage"))


class OpValuesIOManager(dg.ConfigurableIOManagerFactory):
    """Values passed between the ops of one scoring run, kept in its process's memory (the
    in-process executor runs every step there)."""

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.InMemoryIOManager:
        return dg.InMemoryIOManager()
