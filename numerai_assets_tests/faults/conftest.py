"""The fault tests use the pipeline tests' deployment fixtures."""

from numerai_assets_tests.pipeline.conftest import (  # noqa: F401
    deployment,
    instance,
    seeded,
)
