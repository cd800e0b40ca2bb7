"""Where Dagster keeps outputs: the round assets, and the values passed between the ops of one
run (small: ids, cache keys, decisions), both in S3 or a local folder, so a step on another
process or worker reads them. Neither has a config field: the place comes from the deployment
(``DAGSTER_IO_BUCKET``, ``DAGSTER_IO_PREFIX``, ``NUMERAI_ASSETS_HOME``), read when a run starts,
so run config cannot send a run's pickles anywhere else (it is refused at launch).
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


def _pickles(subfolder: str, s3_subfolder: str | None) -> dg.UPathIOManager:
    """Pickles in S3 when ``DAGSTER_IO_BUCKET`` is set (any worker reads them; under
    ``$DAGSTER_IO_PREFIX/<s3_subfolder>``), else under ``$NUMERAI_ASSETS_HOME/<subfolder>``.
    S3 goes through the project's one S3 client (:func:`~numerai_assets.files.
    s3_client_from_settings`); dagster_aws and boto3 are imported only then."""
    settings = Settings.from_env()
    if settings.io_bucket:
        from dagster_aws.s3.io_manager import PickledObjectS3IOManager

        # An S3 object appears only once its upload completes: readers see whole values.
        return PickledObjectS3IOManager(
            s3_bucket=settings.io_bucket,
            s3_session=s3_client_from_settings(settings),
            s3_prefix="/".join(filter(None, [settings.io_prefix, s3_subfolder])),
        )
    return AtomicPickleFilesystemIOManager(base_dir=str(settings.home / subfolder))


class RoundAssetsIOManager(dg.ConfigurableIOManagerFactory):
    """The round assets' storage: ``s3://$DAGSTER_IO_BUCKET/$DAGSTER_IO_PREFIX/...`` when the
    bucket is set (any worker then loads a round's data and clusters), else
    ``$NUMERAI_ASSETS_HOME/dagster_storage``."""

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        return _pickles("dagster_storage", None)


class OpValuesIOManager(dg.ConfigurableIOManagerFactory):
    """Values passed between the ops of one scoring run (a folder per run, under ``op_values``
    beside the round assets): every step of the sharded job may run in another process or on
    another worker."""

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        return _pickles("op_values", "op_values")
