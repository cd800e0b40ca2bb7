"""Every environment variable the project reads, in one place, read when asked.

The names are the original system's (``MONGO_URL``, ``S3_DATASET_BUCKET``, ...) so its deployments
carry over. Every setting has a local default: with nothing set, the store is an embedded on-disk
database and the buckets are folders under ``NUMERAI_ASSETS_HOME``. Nothing reads the environment
at import time: callers build :meth:`Settings.from_env` when they need a value, so a change to the
environment (a test, a daemon restarted with new values) is seen by the next call.

Each field of :class:`Settings` declares its variable(s) in its metadata; :data:`VARIABLES` and
:data:`DEPLOYMENT_VARIABLES` are derived from those declarations, so a new setting cannot be
left out of either.
"""

from __future__ import annotations

import dataclasses
import json
import os
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numerai_assets.scoring.policy import ScoringPolicy

LOCAL_DATASET_BUCKET = "numerai-datasets"
LOCAL_UPLOAD_BUCKET = "numerai-submissions"
DEFAULT_DATASET_KEY = "{round}/numerai_datasets.zip"
DEFAULT_IO_PREFIX = "numerai-assets"
DEFAULT_WEBSERVER_URL = "http://127.0.0.1:3000"
# The layout the upload service (and ``numerai-assets submit``) writes: a submission's file lies
# directly in the folder of its own round and user; the pipeline refuses a file anywhere else.
DEFAULT_UPLOAD_KEY_PREFIX = "{round}/{username}/"
# A JSON setting longer than this is refused unread: the policy has a dozen scalar fields.
MAX_JSON_CHARS = 4096
# The most submissions one scoring run is handed (its run config's list is refused beyond it, so
# NUMERAI_BATCH_SIZE may not exceed it either).
MAX_BATCH_SIZE = 10_000


def is_key_segment(text: str) -> bool:
    """Whether ``text`` names exactly one ``/``-separated part (a folder or a file name) of an
    object key: not empty, not ``.`` or ``..`` (which tools resolve), and without ``/`` or
    ``\\`` (which Windows tools and local folders read as a separator).

    The one rule for the parts of an upload's key, which lives here with its layout
    (:data:`DEFAULT_UPLOAD_KEY_PREFIX`): a user name must be one, as it names a folder
    (:func:`numerai_assets.store.validation.malformed_reason`), so no user's folder is another
    user's or inside it; a file's key must be made of them
    (:func:`numerai_assets.batch.files.misplaced`). ``%`` is an ordinary character: S3 decodes
    no percent-escape in a key.
    """
    return text not in ("", ".", "..") and "/" not in text and "\\" not in text


class ConfigurationError(ValueError):
    """A deployment setting that cannot work: the operator's to fix, never a participant's.

    The message names the variable and the value (secrets excepted). Raised when the setting is
    read, so a sensor tick or a run that needs it fails loudly before deciding anything.
    """


def _env(*names: str, deployment: bool = False, secret: bool = False) -> dict[str, Any]:
    """A field's declaration: the variables it reads (the first set wins), whether it points at
    a deployment's services, credentials or state, and whether its value is secret."""
    return {"env": names, "deployment": deployment, "secret": secret}


@dataclass(frozen=True)
class Settings:
    """Deployment settings; build with :meth:`from_env` (secrets are left out of ``repr``)."""

    home: Path = field(metadata=_env("NUMERAI_ASSETS_HOME", deployment=True))
    mongo_url: str | None = field(  # may hold a password
        repr=False, metadata=_env("MONGO_URL", deployment=True, secret=True)
    )
    mongo_db_name: str = field(metadata=_env("MONGO_DB_NAME", deployment=True))
    dataset_bucket: str = field(metadata=_env("S3_DATASET_BUCKET", deployment=True))
    upload_bucket: str = field(metadata=_env("S3_UPLOAD_BUCKET", deployment=True))
    dataset_key_template: str = field(metadata=_env("S3_DATASET_KEY_TEMPLATE", deployment=True))
    s3_endpoint_url: str | None = field(metadata=_env("S3_ENDPOINT_URL", deployment=True))
    s3_access_key: str | None = field(
        repr=False, metadata=_env("S3_ACCESS_KEY", deployment=True, secret=True)
    )
    s3_secret_key: str | None = field(
        repr=False, metadata=_env("S3_SECRET_KEY", deployment=True, secret=True)
    )
    s3_region: str | None = field(metadata=_env("S3_REGION", "AWS_DEFAULT_REGION"))
    # a folder, or "off" (every run reads earlier files again)
    prediction_cache: str = field(metadata=_env("NUMERAI_PREDICTION_CACHE", deployment=True))
    # where a submission's file must lie: {round} and {username} filled in
    upload_key_prefix: str = field(metadata=_env("NUMERAI_UPLOAD_KEY_PREFIX", deployment=True))
    # DAGSTER_IO_BUCKET: round assets (and the cache's mirror) in S3
    io_bucket: str | None = field(metadata=_env("DAGSTER_IO_BUCKET", deployment=True))
    io_prefix: str = field(metadata=_env("DAGSTER_IO_PREFIX", deployment=True))
    sensor_interval_seconds: int = field(metadata=_env("NUMERAI_SENSOR_INTERVAL_SECONDS"))
    batch_size: int = field(metadata=_env("NUMERAI_BATCH_SIZE"))  # submissions per run
    # shards a run cuts its new pairs into (phase 1), for the executor's workers
    pair_shards: int = field(metadata=_env("NUMERAI_PAIR_SHARDS"))
    # the fewest pairs worth a shard of their own: below it a shard's overhead outweighs it
    min_pairs_per_shard: int = field(metadata=_env("NUMERAI_MIN_PAIRS_PER_SHARD"))
    # threads (BLAS, numba) of each pair shard of the sharded job (shards run side by side)
    shard_threads: int = field(metadata=_env("NUMERAI_SHARD_THREADS"))
    # the sharded job's executor: multiprocess, celery, ecs or k8s (pipeline/jobs.py)
    executor: str = field(metadata=_env("NUMERAI_EXECUTOR", deployment=True))
    celery_broker: str = field(  # may hold a password
        repr=False, metadata=_env("NUMERAI_CELERY_BROKER", deployment=True, secret=True)
    )
    # the broker's queue the run sends its steps to and the workers take them from
    celery_queue: str = field(metadata=_env("NUMERAI_CELERY_QUEUE", deployment=True))
    # batches up to this size run in one process (fastest start); larger ones on the executor
    in_process_max_submissions: int = field(metadata=_env("NUMERAI_IN_PROCESS_MAX_SUBMISSIONS"))
    # new submissions one sensor tick takes
    max_submissions_per_tick: int = field(metadata=_env("NUMERAI_MAX_SUBMISSIONS_PER_TICK"))
    # a claim with no run this old is planned again; the first delay between retries of a lost run
    pending_retry_seconds: int = field(metadata=_env("NUMERAI_PENDING_RETRY_SECONDS"))
    # runs of a submission alone that failed on it before it is given up as invalid
    max_scoring_attempts: int = field(metadata=_env("NUMERAI_MAX_SCORING_ATTEMPTS"))
    # how long a round's lease outlives its holder's last renewal (a run whose process died
    # silently is reported failed that long after; renewed every sixth of it)
    round_lease_seconds: int = field(metadata=_env("NUMERAI_ROUND_LEASE_SECONDS"))
    api_key: str | None = field(repr=False, metadata=_env("API_KEY", secret=True))
    # where `rescore` queues its run and an upload asks for its own
    webserver_url: str = field(metadata=_env("DAGSTER_WEBSERVER_URL"))
    # an upload asks the webserver for its scoring run at once (pipeline/launch.py)
    launch_on_upload: bool = field(metadata=_env("NUMERAI_LAUNCH_ON_UPLOAD"))
    dagster_home: str | None = field(metadata=_env("DAGSTER_HOME", deployment=True))
    # overrides of the default ScoringPolicy's fields
    scoring_policy: Mapping[str, object] = field(metadata=_env("NUMERAI_SCORING_POLICY"))
    # draw the round's picture on every materialization (about 0.8 s a run)
    round_picture: bool = field(metadata=_env("NUMERAI_ROUND_PICTURE"))
    variables_set: frozenset[str] = field(repr=False, default=frozenset())  # given a value

    @property
    def use_s3(self) -> bool:
        """Whether the files live in S3: a deployment that names either bucket."""
        return bool({"S3_DATASET_BUCKET", "S3_UPLOAD_BUCKET"} & self.variables_set)

    @property
    def local_buckets_dir(self) -> Path:
        """Where the local stand-in for S3 keeps ``<bucket>/<key>`` files."""
        return self.home / "s3"

    @property
    def embedded_store_dir(self) -> Path:
        """Where the embedded (montydb) submissions database lives when MONGO_URL is unset."""
        return self.home / "store"

    def policy(self) -> ScoringPolicy:
        """The deployment's scoring policy: ``NUMERAI_SCORING_POLICY`` over the defaults.

        Raises
        ------
        ConfigurationError
            Naming the variable and the value, when the policy cannot work.
        """
        from numerai_assets.scoring.policy import ScoringPolicy

        try:
            return ScoringPolicy.from_overrides(self.scoring_policy)
        except (ValueError, TypeError) as error:
            shown = json.dumps(self.scoring_policy)
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            raise ConfigurationError(f"NUMERAI_SCORING_POLICY {shown}: {error}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: ``os.environ``, now) names, defaults elsewhere.

        Raises
        ------
        ConfigurationError
            Naming the variable: a whole-number setting that is not one or is below its
            minimum (1 for sizes, counts and the interval; 0 for the recovery delays; 6 for the
            round's lease, renewed every sixth of it) or above its maximum
            (:data:`MAX_BATCH_SIZE` for the batch size), a switch that is neither on nor off, a
            JSON setting that is not a small JSON object, an
            upload key prefix with a field other than ``{round}`` and ``{username}``.
        """
        env = os.environ if environ is None else environ
        given: set[str] = set()
        values: dict[str, Any] = {}
        for declared in dataclasses.fields(cls):
            names = declared.metadata.get("env")
            if not names:
                continue
            raw = None
            for name in names:
                text = env.get(name)
                # Stripped and empty means unset, except where "" means something.
                if text is not None and (text.strip() or name in _EMPTY_MEANS_SOMETHING):
                    given.add(name)
                    raw = text if raw is None else raw  # the first one set wins
            parse = _PARSERS.get(declared.name, _text_or_default(declared.name))
            values[declared.name] = parse(names[0], raw, values)
        return cls(**values, variables_set=frozenset(given))


# The variables the project reads, and those that point it at a deployment's services,
# credentials or state (what a test or benchmark removes to run on fresh local state only).
VARIABLES = tuple(name for f in dataclasses.fields(Settings) for name in f.metadata.get("env", ()))
DEPLOYMENT_VARIABLES = tuple(
    name
    for f in dataclasses.fields(Settings)
    if f.metadata.get("deployment")
    for name in f.metadata["env"]
)

_EMPTY_MEANS_SOMETHING = {"NUMERAI_UPLOAD_KEY_PREFIX"}  # "" allows any key in the bucket

# Whole-number settings: field -> (default, smallest value allowed, largest or None).
WHOLE_NUMBERS = {
    # 1: the sensor is evaluated on every pass of Dagster's sensor daemon, which loops every 5 s
    # (dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME, not configurable); an interval of 5 missed
    # every other pass (a 10 s period). An idle tick costs ~15 ms.
    "sensor_interval_seconds": (1, 1, None),
    "batch_size": (2000, 1, MAX_BATCH_SIZE),
    "max_submissions_per_tick": (5000, 1, None),
    "pair_shards": (4, 1, 256),
    "min_pairs_per_shard": (200_000, 1, None),
    # 1: the multiprocess executor runs a step per core. Two shards of 3.9 million pairs at
    # once on 2 cores took 71 s with 2 threads each, 23 s with 1 (OpenBLAS's idle threads spin).
    "shard_threads": (1, 1, 256),
    "in_process_max_submissions": (50, 0, MAX_BATCH_SIZE),
    "pending_retry_seconds": (60, 0, None),
    "max_scoring_attempts": (3, 1, None),
    "round_lease_seconds": (60, 6, None),
}

Parser = Callable[[str, "str | None", dict[str, Any]], Any]


def _whole(field_name: str) -> Parser:
    default, minimum, maximum = WHOLE_NUMBERS[field_name]

    def parse(name: str, text: str | None, _: dict[str, Any]) -> int:
        if text is None:
            return default
        try:
            value = int(text.strip())
        except ValueError:
            raise ConfigurationError(f"{name} must be a whole number, got {text!r}") from None
        if value < minimum:
            raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigurationError(f"{name} must be at most {maximum:,}, got {value:,}")
        return value

    return parse


def _switch(name: str, text: str | None, _: dict[str, Any]) -> bool:
    """An on/off setting: unset or "on" is on, "off" is off."""
    if text is None or text.strip().lower() == "on":
        return True
    if text.strip().lower() == "off":
        return False
    raise ConfigurationError(f"{name} must be 'on' or 'off', got {text!r}")


def _key_prefix(name: str, text: str | None, _: dict[str, Any]) -> str:
    """Unset means the default layout, "" means any key."""
    if text is None:
        return DEFAULT_UPLOAD_KEY_PREFIX
    problem = upload_key_prefix_problem(text)
    if problem is not None:
        raise ConfigurationError(f"{name} {text!r} {problem}")
    return text


def upload_key_prefix_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot name the folder of a round's or a user's uploads, or None.

    ``""`` allows any key. Otherwise the pattern names a folder: parts that are each one key
    segment (:func:`is_key_segment`), ending in ``/``, using only the plain placeholders
    ``{round}`` and ``{username}`` and never both in one part (``{round}{username}`` would give
    round 1 of user "23" and round 12 of user "3" one folder).
    """
    if pattern == "":
        return None
    try:
        fields = [
            (field_name, spec, conversion)
            for _, field_name, spec, conversion in string.Formatter().parse(pattern)
            if field_name is not None
        ]
    except ValueError as error:  # an unmatched brace
        return f"may use only {{round}} and {{username}} ({error})"
    if any(
        field_name not in ("round", "username") or spec or conversion
        for field_name, spec, conversion in fields
    ):
        return "may use only {round} and {username}, as they are (no index, format or conversion)"
    if not pattern.endswith("/"):
        return "must name a folder: end it with '/'"
    parts = pattern[:-1].split("/")
    if not all(is_key_segment(part) for part in parts):
        return "must name a folder: no part may be empty, '.' or '..' or hold '\\'"
    if any("{round}" in part and "{username}" in part for part in parts):
        return "must put {round} and {username} in different parts (folders)"
    return None


def _json_object(name: str, text: str | None, _: dict[str, Any]) -> Mapping[str, object]:
    """A variable holding a small JSON object (``{}`` when unset)."""
    if text is None:
        return {}
    if len(text) > MAX_JSON_CHARS:
        raise ConfigurationError(
            f"{name} is {len(text):,} characters long; at most {MAX_JSON_CHARS:,} are read"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{name} is not valid JSON ({error}): {text[:200]!r}") from None
    except RecursionError:
        raise ConfigurationError(f"{name} is nested too deeply to be a scoring policy") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{name} must be a JSON object, got {text[:200]!r}")
    return value


def _text_or_default(field_name: str) -> Parser:
    defaults: dict[str, Callable[[dict[str, Any]], Any]] = {
        "home": lambda _: Path(".numerai_assets"),
        "mongo_db_name": lambda _: "numerai",
        "dataset_bucket": lambda _: LOCAL_DATASET_BUCKET,
        "upload_bucket": lambda _: LOCAL_UPLOAD_BUCKET,
        "dataset_key_template": lambda _: DEFAULT_DATASET_KEY,
        "prediction_cache": lambda values: str(values["home"] / "prediction_cache"),
        "io_prefix": lambda _: DEFAULT_IO_PREFIX,
        "webserver_url": lambda _: DEFAULT_WEBSERVER_URL,
        "celery_broker": lambda _: DEFAULT_CELERY_BROKER,
        "celery_queue": lambda _: DEFAULT_CELERY_QUEUE,
    }

    def parse(_: str, text: str | None, values: dict[str, Any]) -> Any:
        if text is not None:
            return Path(text.strip()).absolute() if field_name == "home" else text.strip()
        default = defaults.get(field_name)
        if default is None:
            return None
        value = default(values)
        return value.absolute() if isinstance(value, Path) else value

    return parse


EXECUTORS = ("multiprocess", "celery", "ecs", "k8s")
DEFAULT_CELERY_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
# Not dagster-celery's "dagster": a broker shared with other Dagster projects must not hand their
# workers our steps (they would fail to load our code) nor ours theirs.
DEFAULT_CELERY_QUEUE = "numerai-scoring"


def _executor(name: str, text: str | None, _: dict[str, Any]) -> str:
    if text is None:
        return "multiprocess"
    if text.strip() not in EXECUTORS:
        raise ConfigurationError(f"{name} must be one of {', '.join(EXECUTORS)}, got {text!r}")
    return text.strip()


_PARSERS: dict[str, Parser] = {
    **{name: _whole(name) for name in WHOLE_NUMBERS},
    "round_picture": _switch,
    "launch_on_upload": _switch,
    "upload_key_prefix": _key_prefix,
    "scoring_policy": _json_object,
    "executor": _executor,
}
