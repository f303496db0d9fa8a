"""Run the provider integrations' tests on the oldest and the newest release of each range.

pyproject.toml declares a range per provider SDK (``openai>=3.0,<4``...). This script proves
both ends: for each bound it makes a virtual environment, installs llmlab with its test tools
(pinned by constraints.txt, except the provider SDKs) and the provider SDKs at that bound, and
runs the tests that exercise the integrations against the fake provider::

    python scripts/provider_versions.py                  # lowest and newest of every provider
    python scripts/provider_versions.py --bound lowest   # what CI runs (make test-lowest)
    python scripts/provider_versions.py --bound newest --provider openai

``lowest`` installs every provider at the lower bound of its range in one environment (they
co-install, and one environment is a third of the time); ``newest`` installs the newest
release each range allows. The table at the end names the versions tested; exit status 1 when
any run failed. Environments live in ``.venv-providers/`` and are reused.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".venv-providers"
#: Provider SDK distribution -> the pyproject extra that declares its range.
PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "google-genai": "google",
             "google-generativeai": "google"}
#: The tests that drive the integrations through the real provider clients.
TESTS = ["tests/sdk/integrations", "tests/sdk/testing", "tests/sdk/test_deferred_pricing.py"]
_LOWER = re.compile(r">=\s*([0-9][0-9A-Za-z.]*)")


def declared_ranges() -> dict[str, str]:
    """Each provider SDK's requirement as pyproject.toml declares it (``openai>=3.0,<4``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    ranges: dict[str, str] = {}
    for name, extra in PROVIDERS.items():
        for requirement in project["optional-dependencies"][extra]:
            if re.match(rf"{re.escape(name)}\s*[<>=!~]", requirement):
                ranges[name] = requirement.replace(" ", "")
    missing = set(PROVIDERS) - set(ranges)
    if missing:
        raise SystemExit(f"pyproject.toml declares no range for {', '.join(sorted(missing))}")
    return ranges


def lower_bound(requirement: str) -> str:
    """``openai>=3.0,<4`` -> ``3.0``: the oldest release the range admits."""
    match = _LOWER.search(requirement)
    if not match:
        raise SystemExit(f"{requirement}: no lower bound (>=) to test")
    return match[1]


def _constraints_without_providers(target: Path) -> Path:
    """constraints.txt less the provider SDKs, whose versions are what is being tested."""
    names = {re.sub(r"[-_.]+", "-", n) for n in PROVIDERS}
    kept = [line for line in (ROOT / "constraints.txt").read_text("utf-8").splitlines()
            if re.sub(r"[-_.]+", "-", line.split("==")[0].strip().lower()) not in names]
    target.write_text("\n".join(kept) + "\n", "utf-8")
    return target


def _python(env: Path) -> Path:
    return env / "bin" / "python"


def prepare(bound: str, pins: list[str]) -> Path:
    """A virtual environment with llmlab, its test tools and the provider SDKs ``pins``."""
    env = VENVS / bound
    if not _python(env).exists():
        venv.create(env, with_pip=True)
    constraints = _constraints_without_providers(VENVS / f"constraints-{bound}.txt")
    subprocess.run([str(_python(env)), "-m", "pip", "install", "--quiet", "--upgrade",
                    "-c", str(constraints), "-e", f"{ROOT}[cli,dev]", *pins], check=True)
    return env


def installed(env: Path, name: str) -> str:
    """The version of ``name`` installed in ``env``."""
    out = subprocess.run([str(_python(env)), "-c",
                          f"import importlib.metadata as m; print(m.version({name!r}))"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def run(bound: str, pins: list[str], names: list[str]) -> list[tuple[str, str, str, bool]]:
    """Install ``pins`` in the ``bound`` environment and run the integration tests there."""
    print(f"== {bound}: {' '.join(pins)}", flush=True)
    env = prepare(bound, pins)
    result = subprocess.run([str(_python(env)), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-n", "2", *TESTS], cwd=ROOT)
    return [(name, bound, installed(env, name), result.returncode == 0) for name in names]


def main(argv: list[str] | None = None) -> int:
    """Run the chosen bounds; print the versions tested; 1 when any run failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bound", choices=["lowest", "newest", "both"], default="both")
    parser.add_argument("--provider", action="append", choices=sorted(PROVIDERS),
                        help="Only this provider SDK (repeatable) [default: all].")
    args = parser.parse_args(argv)
    ranges = declared_ranges()
    names = args.provider or list(PROVIDERS)
    rows: list[tuple[str, str, str, bool]] = []
    if args.bound in ("lowest", "both"):
        rows += run("lowest", [f"{n}=={lower_bound(ranges[n])}" for n in names], names)
    if args.bound in ("newest", "both"):
        rows += run("newest", [ranges[n] for n in names], names)
    print(f"\n{'provider SDK':22} {'range':32} {'bound':7} {'version':10} result")
    for name, bound, version, ok in rows:
        print(f"{name:22} {ranges[name]:32} {bound:7} {version:10} {'ok' if ok else 'FAILED'}")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
