"""The ```python blocks of markdown pages: a strict parser, and a runner that checks their claims.

Markdown rules. Each breaks loudly (`DocSyntaxError` with file and line) instead of letting a
block slip out of the tests unnoticed:

* a Python block opens with a line that is exactly ```` ```python ```` at column 0 and closes at
  the next line that is exactly ```` ``` ````; ```` ```py ````, ```` ```python3 ```` or
  ```` ```pycon ```` are refused (write ``python``), as is an indented fence or an unclosed one;
  blocks of other languages are skipped over;
* ``<!-- not-run: <why> -->`` on the line right before a Python block keeps it from running;
  the reason is mandatory, and any other line mentioning ``not-run`` is an error.

Claims. An expression statement whose trailing comment starts with ``->`` (or with
``Decimal(``) claims the ``repr`` of its value, optionally followed by prose after a space or
``,;:``::

    breakdown.total          # -> Decimal('0.00475000'): exact, never a float

`run_block` evaluates every claim where it stands and reports those that are false or never
evaluated.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import sys
import tokenize
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Block", "DocSyntaxError", "Run", "parse_markdown", "run_block"]

_NOT_RUN = re.compile(r"^<!-- not-run: (?P<reason>\S.*?) -->$")
_CLAIM = re.compile(r"^#\s*(?:->\s*(?P<arrow>\S.*)|(?P<decimal>Decimal\(.*))$")
_CLAIM_FUNCTION = "__llmlab_doc_claim__"
_MISPLACED = "a not-run marker must be on the line right before ```python"


class DocSyntaxError(Exception):
    """A markdown page breaks the rules above."""


@dataclass(frozen=True)
class Block:
    """One ```python block."""

    path: Path
    """The markdown file (absolute, so tracebacks show the doc's own lines)."""
    name: str
    """The file as the tests name it, e.g. ``docs/sdk.md``."""
    line: int
    """Line of the opening fence, 1-based."""
    code: str
    not_run: str | None = None
    """Why the block is not run, when it is marked so."""

    @property
    def id(self) -> str:
        """``docs/sdk.md:120``."""
        return f"{self.name}:{self.line}"


def parse_markdown(text: str, path: Path, name: str) -> list[Block]:
    """Every ```python block of ``text`` (the page at ``path``), marked ones included."""
    blocks: list[Block] = []
    lines = text.splitlines()
    fence: tuple[int, str, str | None] | None = None  # line, info string, not-run reason
    body: list[str] = []
    pending: tuple[int, str] | None = None  # (line, reason) of a not-run marker

    def fail(number: int, message: str) -> DocSyntaxError:
        return DocSyntaxError(f"{name}:{number}: {message}")

    for number, line in enumerate(lines, start=1):
        if fence is not None:
            if line == "```":
                if fence[1] == "python":
                    blocks.append(Block(path, name, fence[0], "\n".join(body) + "\n", fence[2]))
                fence, body = None, []
            else:
                body.append(line)
            continue
        if pending is not None and pending[0] != number - 1:
            raise fail(pending[0], _MISPLACED)
        if "not-run" in line:
            marker = _NOT_RUN.match(line)
            if marker is None:
                raise fail(number, "write the marker as <!-- not-run: <why it does not run> -->")
            pending = (number, marker["reason"])
        elif line.startswith("```"):
            info = line[3:].strip()
            if info != "python" and info.lower() in {"py", "python3", "pycon", "python"}:
                raise fail(number, f"write ```python, not ```{info} (only ```python runs)")
            if pending is not None and info != "python":
                raise fail(pending[0], _MISPLACED)
            fence, pending = (number, info, pending[1] if pending else None), None
        elif line.lstrip().startswith("```"):
            raise fail(number, "an indented fence is not collected: start it at column 0")
    if fence is not None:
        raise fail(fence[0], "this fence is never closed")
    if pending is not None:
        raise fail(pending[0], _MISPLACED)
    return blocks


@dataclass
class Claim:
    """``expr  # -> shown``: the doc says ``repr(expr)`` starts with ``shown``."""

    line: int
    text: str
    seen: list[str] = field(default_factory=list)

    def holds(self, shown: str) -> bool:
        """True when ``shown`` is the claim, or the claim followed by prose."""
        return self.text == shown or (self.text.startswith(shown) and self.text[len(shown)] in " ,;:")


@dataclass
class Run:
    """What running a block gave."""

    namespace: dict[str, Any]
    tests_called: list[str]
    claims: list[Claim]

    def false_claims(self, block: Block) -> list[str]:
        """One message per claim that was never evaluated or whose value differs."""
        problems = []
        for claim in self.claims:
            where = f"{block.name}:{claim.line}"
            if not claim.seen:
                problems.append(f"{where}: the claim {claim.text!r} was never evaluated")
            problems += [f"{where}: the doc says {claim.text!r}, the code gives {shown}"
                         for shown in claim.seen if not claim.holds(shown)]
        return problems


def _claims(source: str, tree: ast.Module, block: Block) -> dict[int, Claim]:
    """The claims of ``source`` by line, each on the last line of an expression statement."""
    claims: dict[int, Claim] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and (match := _CLAIM.match(token.string)):
            claims[token.start[0]] = Claim(token.start[0], (match["arrow"] or match["decimal"]).rstrip())
    statement_ends = {node.end_lineno for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for line in claims:
        if line not in statement_ends:
            raise DocSyntaxError(f"{block.name}:{line}: a claim must end an expression statement")
    return claims


class _RecordClaims(ast.NodeTransformer):
    """Rewrite each claimed ``expr`` as ``__llmlab_doc_claim__(line, expr)``."""

    def __init__(self, claims: dict[int, Claim]) -> None:
        self.claims = claims

    def visit_Expr(self, node: ast.Expr) -> ast.Expr:
        if node.end_lineno not in self.claims:
            return node
        call = ast.Call(ast.Name(_CLAIM_FUNCTION, ast.Load()),
                        [ast.Constant(node.end_lineno), node.value], [])
        return ast.copy_location(ast.Expr(ast.copy_location(call, node.value)), node)


def run_block(block: Block) -> Run:
    """Execute ``block`` as a module of its own, evaluate its claims, call its ``test_*``
    functions (a pytest example defines them) and return the namespace."""
    source = "\n" * block.line + block.code  # line numbers are the markdown file's
    tree = ast.parse(source, str(block.path))
    claims = _claims(source, tree, block)
    tree = ast.fix_missing_locations(_RecordClaims(claims).visit(tree))

    def record(line: int, value: Any) -> Any:
        claims[line].seen.append(repr(value))
        return value

    module_name = "llmlab_doc_" + re.sub(r"\W", "_", block.id)
    module = types.ModuleType(module_name)
    module.__file__ = str(block.path)
    namespace = module.__dict__
    namespace[_CLAIM_FUNCTION] = record
    sys.modules[module_name] = module  # pydantic and dataclasses look their module up
    try:
        exec(compile(tree, str(block.path), "exec"), namespace)
        tests = [(name, value) for name, value in namespace.items() if name.startswith("test_")
                 and inspect.isfunction(value) and value.__module__ == module_name]
        for name, test in tests:
            if inspect.signature(test).parameters:
                raise DocSyntaxError(f"{block.id}: {name}() takes fixtures; doc tests take none")
            test()
    finally:
        del sys.modules[module_name]
    return Run(namespace, [name for name, _ in tests], list(claims.values()))
