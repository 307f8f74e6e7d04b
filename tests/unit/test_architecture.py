"""Which way imports run (docs/architecture.md): each layer imports only what it may."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cryptosent

SRC = Path(cryptosent.__file__).parent
FOUNDATION = ("config", "errors", "model", "batch", "aggregates", "runtime", "kafka", "metrics")

# module (or package) -> packages and modules of cryptosent it must not import
RULES: dict[str, tuple[str, ...]] = {
    "errors": ("*",),
    "batch": ("*",),
    "aggregates": ("*",),
    "model": ("*", "!errors"),
    "runtime": ("*", "!errors"),
    "config": ("*", "!errors"),
    "kafka": ("*", "!config", "!errors", "!runtime"),
    "metrics": ("*",),
    "analysis": ("cli", "processor", "sinks", "ingest", "kafka", "dashboard", "sources", "bench"),
    "sources": ("cli", "processor", "sinks", "ingest", "kafka", "dashboard", "bench", "analysis"),
    "ingest": ("cli", "processor", "sinks", "dashboard", "bench", "analysis"),
    "sinks": ("cli", "processor", "ingest", "sources", "dashboard", "bench", "analysis"),
    "processor": ("cli", "ingest", "sources", "dashboard", "bench"),
    "dashboard": ("cli", "processor", "ingest", "sources", "bench"),
    "stack": ("cli", "processor", "sinks", "ingest", "sources", "dashboard", "bench"),
    "bench": ("cli",),
    "demo": ("cli",),
    "relevance": ("cli", "processor", "sinks", "ingest", "kafka", "dashboard", "bench"),
}
# the mock generator's vocabulary is the coin catalogue (data, not a filter)
ALLOWED = {("sources/mock.py", "analysis.coins"), ("sources/mock_campaigns.py", "analysis.coins")}


def imports(path: Path) -> set[str]:
    """The cryptosent modules a file imports, without the `cryptosent.` prefix."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n.removeprefix("cryptosent.") for n in names if n.startswith("cryptosent."))
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def forbidden(layer: str, target: str) -> bool:
    rule = RULES[layer]
    if top(target) == layer:
        return False
    if "*" in rule:
        return f"!{top(target)}" not in rule and f"!{target}" not in rule
    return top(target) in rule


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_imports(layer: str) -> None:
    paths = [SRC / f"{layer}.py"] if (SRC / f"{layer}.py").exists() else [
        p for p in (SRC / layer).rglob("*.py")
    ]  # fmt: skip
    assert paths, layer
    wrong = []
    for path in paths:
        relative = path.relative_to(SRC).as_posix()
        for target in imports(path):
            if any(relative == f and (target + ".").startswith(m + ".") for f, m in ALLOWED):
                continue
            if forbidden(layer, target):
                wrong.append(f"{relative} imports cryptosent.{target}")
    assert wrong == []


def test_nothing_imports_the_cli() -> None:
    wrong = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if not path.is_relative_to(SRC / "cli")
        and path.name != "__main__.py"
        and any(top(t) == "cli" for t in imports(path))
    ]
    assert wrong == []
