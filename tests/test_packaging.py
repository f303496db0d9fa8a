"""What ``pip install`` delivers is declared: every import of a module belongs to an extra that
installs it, and the metadata PyPI shows (licence, links, Python versions) is right.

A missing declaration hides in the development install, where another extra's packages happen
to be present (``urllib3`` was imported by the server's webhooks and declared by nothing).
`scripts/check_dist.py` installs the built wheel per extra; this test finds the same mistake
in a second, at the source.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
PROJECT = PYPROJECT["project"]
REPO_URL = PROJECT["urls"]["Repository"]

#: Which extras each part of the code may rely on (the SDK core: the base dependencies only).
PARTS = {
    "sdk/llmlab": (),
    "sdk/llmlab/cli": ("cli",),
    "server/llmlab_server": ("cli", "server"),
}
#: Subpackages left out of a part: each is checked as its own part, or imports its library
#: only inside guarded functions (one integration per provider SDK).
EXCLUDED = {"sdk/llmlab": ("cli", "integrations")}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]).lower()


def _declared(extras: tuple[str, ...]) -> set[str]:
    names = {_name(r) for r in PROJECT["dependencies"]}
    pending = list(extras)
    while pending:
        for requirement in PROJECT["optional-dependencies"][pending.pop()]:
            name = _name(requirement)
            if name == "llmlab":  # "llmlab[cli]" inside another extra
                pending += re.findall(r"[\w-]+", requirement.split("[", 1)[1])
            else:
                names.add(name)
    return names


def _module_level_imports(path: Path) -> set[str]:
    """Top-level names imported when the module is imported (not inside functions)."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) else ():
            if isinstance(sub, ast.Import):
                found.update(alias.name.split(".")[0] for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom) and sub.level == 0 and sub.module:
                found.add(sub.module.split(".")[0])
    return found


def _files(part: str) -> list[Path]:
    base = ROOT / part
    skip = EXCLUDED.get(part, ())
    return [p for p in sorted(base.rglob("*.py"))
            if p.relative_to(base).parts[0] not in skip and "migrations" not in p.parts]


@pytest.mark.parametrize("part", list(PARTS))
def test_every_module_level_import_is_declared_by_the_part_s_extras(part: str) -> None:
    """Each third-party module imported at module level in this part of the code comes from
    a distribution declared by the base dependencies or the part's extras."""
    declared = _declared(PARTS[part])
    ours = {"llmlab", "llmlab_server"}
    owners = packages_distributions()
    undeclared: dict[str, set[str]] = {}
    for path in _files(part):
        for module in _module_level_imports(path) - ours - set(sys.stdlib_module_names):
            dists = {_name(d) for d in owners.get(module, [module])}
            if not dists & declared:
                undeclared.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    assert not undeclared, f"imported but not declared for {part}: {undeclared}"


def test_the_check_sees_an_undeclared_import(tmp_path: Path) -> None:
    """The import walk finds module-level imports, nested ones included, and skips function
    bodies and TYPE_CHECKING blocks (so the test above can fail)."""
    source = tmp_path / "m.py"
    source.write_text("import urllib3\ntry:\n    from yaml import x\nexcept ImportError:\n"
                      "    pass\nif TYPE_CHECKING:\n    import numpy\ndef f():\n    import redis\n")
    assert _module_level_imports(source) == {"urllib3", "yaml"}
    assert "urllib3" in _declared(("server",)) and "urllib3" not in _declared(("cli",))


def test_the_licence_is_an_spdx_expression_with_its_file() -> None:
    """pyproject's licence is an SPDX string (the table form is deprecated and warns on
    every build) and the LICENSE file it names exists."""
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text("utf-8")


def test_classifiers_name_every_supported_python() -> None:
    """Every minor version from requires-python's lower bound to 3.13 has a classifier."""
    lowest = int(re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"])[1])  # type: ignore[index]
    for minor in range(lowest, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in PROJECT["classifiers"]


def test_readme_links_are_absolute_and_point_at_files_of_this_repository() -> None:
    """PyPI shows the README away from the repository: every link is absolute, and each link
    into the repository names a file that exists."""
    readme = (ROOT / "README.md").read_text("utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert links
    relative = [link for link in links if not re.match(r"https?://", link)]
    assert not relative, f"relative links break on PyPI: {relative}"
    prefix = f"{REPO_URL}/blob/main/"
    for link in links:
        if link.startswith(prefix):
            target = link[len(prefix):].split("#")[0]
            assert (ROOT / target).is_file(), f"{link} names no file of the repository"
