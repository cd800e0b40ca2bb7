"""The Celery app of the workers that run ``score_round_sharded``'s steps when
``NUMERAI_EXECUTOR=celery``::

    celery -A numerai_assets.pipeline.celery_app worker --concurrency=1 -n shards-1@%h

dagster-celery's own task (``execute_plan``) in an app built from the same config as the run's
executor (:func:`~numerai_assets.pipeline.jobs.celery_config`): the broker
(``NUMERAI_CELERY_BROKER``), the queue (``NUMERAI_CELERY_QUEUE``, the only one it takes steps
from), acking late, one task prefetched. Start workers with the environment of the code server
(the same ``NUMERAI_*``, ``MONGO_*``, ``S3_*``, ``DAGSTER_IO_*`` variables): a step loads the job
from the code location (``numerai_assets.definitions``, imported when the worker starts), in
the worker's environment, and reads and writes what the run's other steps do.
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task
from kombu import Queue

from numerai_assets.pipeline.jobs import celery_config
from numerai_assets.settings import Settings

_config = celery_config(Settings.from_env())
app = make_app(CeleryExecutor.for_cli(**_config).app_args())
# make_app declares dagster-celery's "dagster" queue; the workers consume ours instead.
app.conf.task_queues = [Queue(_config["config_source"]["task_default_queue"])]
execute_plan = create_task(app)
