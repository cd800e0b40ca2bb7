"""The pipeline tests' fixtures (a local deployment, a seeded round, a Dagster instance)."""

from numerai_assets_tests.pipeline.conftest import deployment, instance, seeded  # noqa: F401
