"""Build the sdist and wheel, install the wheel in clean environments, check what users get.

What ``pip install llmlab`` gives a user is not what the editable development install gives us
(a missing dependency hides behind another extra's packages there). So, from the built wheel,
each in a fresh virtual environment pinned by constraints.txt::

    sdk      pip install llmlab            import every SDK module; no click, no provider SDK;
                                           `llmlab` explains the cli extra
    cli      pip install 'llmlab[cli]'     `llmlab --help`, `llmlab pricing show`, `llmlab cost`;
                                           the server commands explain the server extra
    server   pip install 'llmlab[server,openai,anthropic,google]'
                                           import every module of both packages; `llmlab demo
                                           --exit` runs the whole product offline

plus the cli checks on every other supported Python found (3.12, 3.13: on PATH or pyenv's),
``twine check`` of both files (PyPI renders the README) and the wheel's contents (data files,
licence). Run with ``make check-dist``; exit status 1 at the first failure, with its output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
OTHER_PYTHONS = ("3.12", "3.13")
#: Files a working install needs that are not Python modules.
WHEEL_MUST_HOLD = ("llmlab/py.typed", "llmlab/pricing/catalogue.json", "llmlab_server/py.typed",
                   "llmlab_server/migrations/env.py", "llmlab_server/templates/",
                   "llmlab_server/static/")

# Imports every module of the named packages and names those that fail (run in the venv).
_IMPORT_ALL = """
import importlib, pkgutil, sys, traceback
failed = []
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if info.name.endswith(".__main__") or ".migrations." in info.name:
            continue  # entry scripts and Alembic's env.py run only under their tools
        try:
            importlib.import_module(info.name)
        except Exception:
            failed.append(info.name + ":\\n" + traceback.format_exc(limit=2))
if failed:
    sys.exit("modules that do not import:\\n" + "\\n".join(failed))
print("imported every module of", ", ".join(sys.argv[1:]))
"""


class CheckFailed(Exception):
    """A check failed; the message says which and shows the output."""


def run(cmd: list[str], *, expect: int | None = 0, env: dict[str, str] | None = None,
        timeout: float = 600) -> str:
    """Run ``cmd``; its combined output; CheckFailed when the exit status is not ``expect``."""
    shown = " ".join(str(c) for c in cmd).replace("\n", " ")
    print(f"$ {shown if len(shown) < 160 else shown[:157] + '...'}", flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    output = result.stdout + result.stderr
    if expect is not None and result.returncode != expect:
        raise CheckFailed(f"`{shown}` exited {result.returncode}, expected {expect}:\n{output}")
    return output


def must_contain(output: str, *needles: str) -> None:
    """CheckFailed unless every needle is in ``output``."""
    for needle in needles:
        if needle not in output:
            raise CheckFailed(f"expected {needle!r} in:\n{output}")


def find_python(version: str) -> str | None:
    """A working ``python<version>``: on PATH, or installed by pyenv (whose PATH shims fail
    for versions that are installed but not selected)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{version}"),
                  *sorted(str(p) for p in pyenv.glob(f"{version}.*/bin/python{version}"))]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "import venv"],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


def build(outdir: Path) -> tuple[Path, Path]:
    """The sdist and wheel of the working tree, and their ``twine check``."""
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(outdir), str(ROOT)])
    sdist, = outdir.glob("llmlab-*.tar.gz")
    wheel, = outdir.glob("llmlab-*.whl")
    output = run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)])
    must_contain(output, "PASSED")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in WHEEL_MUST_HOLD:
        if not any(n.startswith(needed) for n in names):
            raise CheckFailed(f"the wheel lacks {needed}")
    if not any(n.endswith("licenses/LICENSE") for n in names):
        raise CheckFailed("the wheel carries no LICENSE")
    return sdist, wheel


class Env:
    """A fresh virtual environment with the wheel installed with some extras."""

    def __init__(self, where: Path, wheel: Path, extras: str, python: str = sys.executable):
        self.dir = where
        if python == sys.executable:
            venv.create(where, with_pip=True)
        else:
            run([python, "-m", "venv", str(where)])
        self.python = str(where / "bin" / "python")
        self.llmlab = str(where / "bin" / "llmlab")
        target = f"{wheel}[{extras}]" if extras else str(wheel)
        run([self.python, "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS), target])
        self.env = {**os.environ, "LLMLAB_HOME": str(where / "home"), "NO_COLOR": "1",
                    "COLUMNS": "120"}
        for name in ("LLMLAB_BASE_URL", "LLMLAB_API_KEY", "LLMLAB_PROJECT", "PYTHONPATH"):
            self.env.pop(name, None)

    def py(self, code: str, *args: str, expect: int | None = 0) -> str:
        """Run Python code in the environment (outside the checkout: the wheel, not sdk/)."""
        return run([self.python, "-c", code, *args], expect=expect, env=self.env)

    def cli(self, *args: str, expect: int | None = 0) -> str:
        """Run the installed ``llmlab`` command."""
        return run([self.llmlab, *args], expect=expect, env=self.env)

    def absent(self, *modules: str) -> None:
        """CheckFailed when any of ``modules`` is importable here."""
        self.py("import importlib, sys\nfound = []\nfor m in sys.argv[1:]:\n    try:\n"
                "        importlib.import_module(m)\n    except ImportError:\n        continue\n"
                "    found.append(m)\nsys.exit(f'installed: {found}' if found else 0)", *modules)


def check_sdk(work: Path, wheel: Path) -> None:
    """``pip install llmlab``: the SDK alone imports, prices, and points at the cli extra."""
    env = Env(work / "sdk", wheel, "")
    env.absent("click", "rich", "flask", "openai", "anthropic", "google.genai")
    env.py(_IMPORT_ALL.replace('info.name.endswith(".__main__")',
                               'info.name.startswith("llmlab.cli") or info.name.endswith(".__main__")'),
           "llmlab")
    out = env.py("import llmlab; b = llmlab.cost('gpt-4o', {'input_tokens': 1000, "
                 "'output_tokens': 100}); print(b.total, b.priced)")
    must_contain(out, "0.0035000 True")
    must_contain(env.cli("--help", expect=1), "pip install 'llmlab[cli]'")


def check_cli(work: Path, wheel: Path, python: str = sys.executable, label: str = "") -> None:
    """``pip install 'llmlab[cli]'``: help, pricing and cost work; server commands explain."""
    env = Env(work / f"cli{label}", wheel, "cli", python)
    env.absent("flask", "sqlalchemy", "openai")
    env.py(_IMPORT_ALL, "llmlab")
    must_contain(env.cli("--help"), "pricing", "summary")
    must_contain(env.cli("--version"), "0.")
    must_contain(env.cli("pricing", "show", "gpt-4o"), "gpt-4o", "input")
    must_contain(env.cli("pricing", "list", "--provider", "anthropic", "--limit", "3"), "claude")
    must_contain(env.cli("demo", "--exit", expect=None), "llmlab[server]")


def check_server(work: Path, wheel: Path) -> None:
    """``pip install 'llmlab[server,openai,anthropic,google]'``: every module imports and the
    demo runs the whole product offline."""
    env = Env(work / "server", wheel, "server,openai,anthropic,google")
    env.py(_IMPORT_ALL, "llmlab", "llmlab_server")
    out = run([env.llmlab, "demo", "--exit"], env=env.env, timeout=300)
    must_contain(out, "Cost by", "$")


def main(argv: list[str] | None = None) -> int:
    """Build, then run every check; 0 when all pass."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="llmlab-dist-"))
    try:
        _, wheel = build(work / "dist")
        check_sdk(work, wheel)
        check_cli(work, wheel)
        for version in OTHER_PYTHONS:
            python = find_python(version)
            if python is None:
                print(f"note: no Python {version} here; the cli checks ran on the others")
                continue
            check_cli(work, wheel, python, f"-{version}")
        check_server(work, wheel)
    except (CheckFailed, subprocess.TimeoutExpired) as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\nthe built sdist and wheel pass every install check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
