"""The layers of docs/architecture.md hold: `lint-imports` (run by scripts/test.sh) checks the contracts in
pyproject.toml; these tests check that the contracts cover every module and that they do catch a wrong import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _layer_modules() -> list[str]:
    layers = next(c for c in CONFIG["contracts"] if c["id"] == "layers")["layers"]
    modules = []
    for layer in layers:
        for separator in ("|", ":"):
            layer = layer.replace(separator, " ")
        modules.extend(layer.split())
    return modules


def _modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


# Packages split across layers (their domain modules in the app's layer, their web modules in the web layer), whose
# `__init__` holds only a docstring: like a root package, they only gather their modules.
SPLIT_PACKAGES = {"usage.studio"}


def test_split_packages_hold_no_code():
    for package in SPLIT_PACKAGES:
        tree = ast.parse((ROOT / package.replace(".", "/") / "__init__.py").read_text())
        assert all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in tree.body)


def test_every_module_of_the_project_is_in_a_layer():
    listed = _layer_modules()
    missing = [
        module
        for package in CONFIG["root_packages"]
        for module in _modules(package)
        if module not in CONFIG["root_packages"]  # a root package's own __init__ only gathers its modules
        and module not in SPLIT_PACKAGES
        and not any(module == layer or module.startswith(layer + ".") for layer in listed)
    ]
    assert missing == [], f"Place these modules in a layer in pyproject.toml [tool.importlinter]: {missing}"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own virtualenv's executable, fixed arguments
        [str(LINT_IMPORTS), "--no-cache", "pyproject.toml"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory):
    """The project's packages and configuration, copied so that a test can add a wrong import to them."""
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


@pytest.mark.parametrize(
    ("importer", "wrong_import", "expected"),
    [
        ("orgs/models.py", "import workspaces.models", "orgs.models is not allowed to import workspaces.models"),
        ("workspaces/services/members.py", "import billing.ledger", "is not allowed to import billing.ledger"),
        ("billing/selectors.py", "from usage import models", "billing.selectors is not allowed to import usage"),
        ("usage/services.py", "import qolaba.access", "usage.services is not allowed to import qolaba.access"),
        ("qolaba/tools.py", "import orgs.models", "qolaba.tools is not allowed to import orgs.models"),
        ("orgs/views.py", "import qolaba.lifecycle", None),  # allowed: the web layer may use every layer below it
        ("usage/selectors.py", "import qolaba.demo.usage", "usage is not allowed to import qolaba.demo"),
        ("billing/services.py", "import bench.floor", "billing is not allowed to import bench"),
    ],
)
def test_an_import_against_the_layers_breaks_the_contracts(tree_copy, importer, wrong_import, expected):
    target = tree_copy / importer
    original = target.read_text()
    try:
        target.write_text(original + f"\n{wrong_import}  # noqa\n")
        result = _lint_imports(tree_copy)
    finally:
        target.write_text(original)
    if expected is None:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode == 1, result.stdout + result.stderr
        assert expected in result.stdout


def test_the_copied_tree_keeps_the_contracts(tree_copy):
    """Without a wrong import the same copy passes: the failures above come from the added lines alone."""
    result = _lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout
