from numerai_assets_tests.store.conftest import database, store  # noqa: F401
