"""The walls between the layers: the math imports nothing above it, no circle, no module too big.

Checked from the source (what each module imports at its top level and inside functions) and by
importing in a fresh interpreter (what a module really loads).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from numerai_assets_tests.conftest import REPO

PACKAGE = REPO / "numerai_assets"
MAX_MODULE_LINES = 450
# What the scoring math must never load: a store, Dagster, plotting, S3.
NOT_FOR_THE_MATH = ("pymongo", "bson", "montydb", "dagster", "matplotlib", "boto3", "botocore")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """The ``numerai_assets`` modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = (package or module_name(path)).split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("numerai_assets")}


def scoring_modules() -> list[Path]:
    return sorted((PACKAGE / "scoring").glob("*.py"))


@pytest.mark.parametrize("path", scoring_modules(), ids=lambda p: p.name)
def test_the_math_imports_only_the_math(path: Path) -> None:
    outside = {name for name in imports(path) if not name.startswith("numerai_assets.scoring")}
    assert outside == set(), f"{path.name} imports {sorted(outside)}"


def test_no_circle_among_the_math_modules() -> None:
    """Module-level imports between the scoring modules form no cycle (a lazy import inside a
    function, for a library loaded only when asked, does not count)."""
    graph = {
        module_name(path): {
            name
            for name in imports(path, top_level_only=True)
            if name in {module_name(p) for p in scoring_modules()} and name != module_name(path)
        }
        for path in scoring_modules()
    }
    seen: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        if seen.get(node) == "done":
            return
        assert seen.get(node) != "open", f"import circle: {' -> '.join([*trail, node])}"
        seen[node] = "open"
        for child in graph[node]:
            visit(child, [*trail, node])
        seen[node] = "done"

    for node in graph:
        visit(node, [])


@pytest.mark.parametrize(
    "module",
    [
        "numerai_assets.scoring.policy",
        "numerai_assets.scoring.comparison",
        "numerai_assets.scoring.round_decisions",
        "numerai_assets.scoring.originality",
        "numerai_assets.scoring.exact",
    ],
)
def test_importing_the_math_loads_no_store_dagster_plotting_or_s3(module: str) -> None:
    assert loaded_by(module, NOT_FOR_THE_MATH) == set()


def test_the_policy_loads_numpy_and_nothing_heavier() -> None:
    heavier = ("scipy", "sklearn", "pandas", "pyarrow", "numba")
    assert loaded_by("numerai_assets.scoring.policy", heavier) == set()


def loaded_by(module: str, libraries: tuple[str, ...]) -> set[str]:
    """Which of ``libraries`` importing ``module`` loads, in a fresh interpreter."""
    script = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted(m for m in {tuple(libraries)!r} if m in sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    return set(json.loads(loaded))


# Libraries that take from a tenth of a second (numba) to a second (scikit-learn) to import. The
# code location imports none that Dagster does not already: the daemon's code server, every run's
# process and every step's import it before doing anything (issue 17: a run's start).
HEAVY = ("matplotlib", "sklearn", "scipy", "pyarrow", "pandas", "boto3", "botocore", "numba")
# The math modules that compute with one (importing numba imports scipy; pandas, pyarrow).
NEEDS_HEAVY = {
    "alternatives": {"scipy", "numba"},
    "correlation": {"numba", "scipy"},
    "ks": {"numba", "scipy"},
    "ks_null": {"scipy"},
    "ks_sketch": {"numba", "scipy"},
    "submission": {"pandas", "pyarrow"},
}


def heavy_loaded_by(module: str) -> set[str]:
    """The :data:`HEAVY` libraries that importing ``module`` loads, in a fresh interpreter."""
    return loaded_by(module, HEAVY)


def test_the_code_location_loads_no_heavy_library_dagster_does_not() -> None:
    beyond_dagster = heavy_loaded_by("numerai_assets.definitions") - heavy_loaded_by("dagster")
    assert beyond_dagster == set()


@pytest.mark.parametrize("path", scoring_modules(), ids=lambda p: p.name)
def test_a_math_module_loads_only_the_heavy_libraries_it_computes_with(path: Path) -> None:
    assert heavy_loaded_by(module_name(path)) <= NEEDS_HEAVY.get(path.stem, set())


def test_no_package_module_is_over_450_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_an_upload_asks_for_its_run_without_loading_dagster_or_a_heavy_library() -> None:
    """``numerai-assets submit`` stores the file and asks the webserver for the upload's run
    (issue 17: the decision within 4 s of the command): its path loads neither Dagster (0.5 s)
    nor any library the scoring computes with (the command line's modules import those where
    they are used)."""
    assert loaded_by("numerai_assets.cli.main", ("dagster", *HEAVY)) == set()
    assert loaded_by("numerai_assets.pipeline.launch", ("dagster", *HEAVY)) == set()
