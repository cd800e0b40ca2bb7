from numerai_assets_tests.pipeline.conftest import deployment, instance, seeded  # noqa: F401
from numerai_assets_tests.pipeline.test_interleavings import quick_recovery  # noqa: F401
