"""The package's layering: no subpackage reaches into another subpackage's private modules."""

from __future__ import annotations

import ast
from pathlib import Path

import qhpo

SOURCE = Path(qhpo.__file__).parent


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every module an import statement names, inside functions too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # ``from qhpo.x import _y`` imports the module qhpo.x._y when _y is one
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                if alias.name.startswith("_") and (SOURCE.parent / name.replace(".", "/")).with_suffix(".py").exists():
                    found.append((node.lineno, name))
    return found


def foreign_private_imports(path: Path) -> list[str]:
    """Imports in ``path`` of a private module (``_name``) of another qhpo subpackage."""
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts  # ("qhpo", "ray", "_scheduler")
    own = parts[1] if len(parts) > 2 else None  # modules at the top of qhpo belong to no subpackage
    problems = []
    for line, name in _imported_modules(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        pieces = name.split(".")
        if pieces[0] != "qhpo" or len(pieces) < 3:
            continue  # another library, or qhpo's own top-level modules (qhpo._errors)
        if pieces[1] != own and any(piece.startswith("_") for piece in pieces[2:]):
            problems.append(f"{path.relative_to(SOURCE.parent)}:{line} imports {name}")
    return problems


def test_no_module_imports_another_subpackages_private_modules():
    problems = [p for path in sorted(SOURCE.rglob("*.py")) for p in foreign_private_imports(path)]
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_foreign_private_import():
    module = SOURCE / "ray" / "_scheduler.py"
    tree = ast.parse("def f():\n    from qhpo.optuna._pruner import x\n    from qhpo.optuna import _pruner\n")
    assert [name for _, name in _imported_modules(tree)] == [
        "qhpo.optuna._pruner",
        "qhpo.optuna",
        "qhpo.optuna._pruner",
    ]
    assert foreign_private_imports(module) == []  # the scheduler itself reads only public names


def test_the_package_never_imports_syne_tune():
    """Syne Tune (the ``peers`` extra) serves benchmarks/peers.py only; the runtime stays free of it."""
    importers = [
        f"{path.relative_to(SOURCE.parent)}:{line}"
        for path in sorted(SOURCE.rglob("*.py"))
        for line, name in _imported_modules(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if name.split(".")[0] == "syne_tune"
    ]
    assert not importers, "\n".join(importers)
    tree = ast.parse("def f():\n    import syne_tune.optimizer\n")
    assert [name for _, name in _imported_modules(tree)] == ["syne_tune.optimizer"]  # the check would see one
