from numerai_assets_tests.pipeline.conftest import deployment, instance, seeded  # noqa: F401
from numerai_assets_tests.store.conftest import database, store  # noqa: F401
