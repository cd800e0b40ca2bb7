"""What `make run` starts prints no warning a newcomer would have to act on."""

from __future__ import annotations

import re

from numerai_assets_tests.conftest import PRODUCTION_YAML, REPO


def test_no_instance_file_where_make_run_starts_dagster() -> None:
    """`dagster dev` (and `dg dev`) warns that a dagster.yaml or dagster.yml in its working
    folder "will not be used" when DAGSTER_HOME is elsewhere, as `make run` sets it: the
    instance files live under deploy/."""
    assert [name for name in ("dagster.yaml", "dagster.yml") if (REPO / name).exists()] == []
    assert PRODUCTION_YAML.is_file()


def test_make_run_starts_dg_dev_from_the_dev_install() -> None:
    """`dagster dev` warns that it is superseded by `dg dev`; `dg dev -w workspace.yaml` starts
    the same services (dagster-dg-cli, pinned to the Dagster release, in the dev extra)."""
    run = re.search(r"^run:.*?(?=^\S)", (REPO / "Makefile").read_text(), re.M | re.S).group(0)
    assert re.search(r"\$\(BIN\)/dg dev .*-w workspace\.yaml", run)
    assert "dagster dev" not in run
    setup = (REPO / "setup.py").read_text()
    dagster = re.search(r'"dagster==([\d.]+)"', setup).group(1)
    assert f'"dagster-dg-cli=={dagster}"' in setup
