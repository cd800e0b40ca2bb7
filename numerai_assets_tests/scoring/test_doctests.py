"""The examples in the scoring modules' docstrings run as tests, and say what the code does.

Each module of ``numerai_assets.scoring`` is imported by its name, as the pipeline imports it,
and its examples are run by :mod:`doctest` here, so plain ``pytest`` (``make test``) runs them
and a wrong example fails the suite. Never ``python -m doctest path/to/module.py``: that runs
the file as ``__main__``, whose numba ``cache=True`` kernels are then cached under that name
and break the next import of the package.

Besides running them: every public function, class and method of a public scoring module has
a docstring, every public function an example, and any of them that raises (a class: its
constructor) says what in a ``Raises`` section.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pkgutil
import textwrap
import types

import pytest

import numerai_assets.scoring as scoring

MODULES = sorted(f"{scoring.__name__}.{m.name}" for m in pkgutil.iter_modules(scoring.__path__))
PUBLIC_MODULES = [name for name in MODULES if not name.rsplit(".", 1)[1].startswith("_")]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_examples(module: types.ModuleType) -> tuple[int, int, str]:
    """``(failed, attempted, report)`` of the examples in ``module`` and everything defined in it
    (what ``doctest.testmod(module)`` runs), the report kept rather than printed."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in finder.find(module, module.__name__):
        runner.run(test, out=report.append)
    return runner.failures, runner.tries, "".join(report)


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_run_as_written(name: str) -> None:
    failed, _, report = run_examples(importlib.import_module(name))
    assert failed == 0, report


def test_a_wrong_example_fails() -> None:
    """The harness itself: an example whose output is not what the code prints is a failure."""
    module = types.ModuleType("wrong_example")
    module.__doc__ = ">>> 1 + 1\n3\n"
    failed, attempted, report = run_examples(module)
    assert (failed, attempted) == (1, 1)
    assert "Expected:\n    3\nGot:\n    2" in report


def public_definitions(module: types.ModuleType) -> list[tuple[str, object]]:
    """The public functions, classes and methods ``module`` defines (imports excluded)."""
    found = []
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            found.append((name, value))
        elif inspect.isclass(value):
            found.append((name, value))
            for attribute, member in vars(value).items():
                function = (
                    member.__func__ if isinstance(member, staticmethod | classmethod) else member
                )
                function = function.fget if isinstance(function, property) else function
                if not attribute.startswith("_") and inspect.isfunction(function):
                    found.append((f"{name}.{attribute}", function))
    return found


def raises_directly(function: object) -> bool:
    """Whether the function's own body holds a ``raise`` (re-raising a caught error aside)."""
    try:
        source = inspect.getsource(function)
    except OSError:  # made at run time, as a dataclass's __init__: it raises nothing of its own
        return False
    tree = ast.parse(textwrap.dedent(source))
    return any(isinstance(node, ast.Raise) and node.exc is not None for node in ast.walk(tree))


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_definition_is_documented_with_an_example(name: str) -> None:
    module = importlib.import_module(name)
    missing = []
    for qualified, value in public_definitions(module):
        doc = inspect.getdoc(value) or ""
        if not doc.strip():
            missing.append(f"{qualified}: no docstring")
        elif inspect.isfunction(value) and "." not in qualified and "Examples\n---" not in doc:
            missing.append(f"{qualified}: no Examples section")
        if inspect.isclass(value):  # what its constructor raises: the class's Raises section
            checks = [
                f
                for m in ("__init__", "__post_init__")
                if (f := vars(value).get(m)) and f.__qualname__.startswith(value.__qualname__)
            ]
        else:
            checks = [value]
        if any(raises_directly(f) for f in checks) and "Raises\n------" not in doc:
            missing.append(f"{qualified}: raises, but has no Raises section")
    assert not missing, "\n".join(missing)
