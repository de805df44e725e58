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


# -- Optuna's private API: only qhpo._optuna_schema touches it --------------------------------
SHIM = SOURCE / "_optuna_schema.py"
#: Private names of Optuna's study, trial and storage objects that qhpo has ever needed.
OPTUNA_PRIVATE = {"_storage", "_study_id", "_trial_id", "system_attrs", "set_system_attr", "_thread_local"}
#: Files other than the shim that read one of these names directly (none).
DIRECT_READERS: dict = {}


def optuna_private_uses(path: Path) -> list[str]:
    """``line name`` of each use in ``path`` of a private Optuna attribute (not on ``self``) or
    of an import from a private Optuna module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in OPTUNA_PRIVATE:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{node.lineno} {node.attr}")
        elif isinstance(node, ast.Constant) and node.value in OPTUNA_PRIVATE | {"fixed_params"}:
            found.append(f"{node.lineno} {node.value}")
    for line, name in _imported_modules(tree):
        if name.split(".")[0] == "optuna" and any(piece.startswith("_") for piece in name.split(".")[1:]):
            found.append(f"{line} {name}")
    return found


def test_only_the_schema_module_uses_optunas_private_api():
    problems = {}
    for path in sorted(SOURCE.rglob("*.py")):
        if path == SHIM:
            continue
        uses = optuna_private_uses(path)
        if uses:
            problems[str(path.relative_to(SOURCE.parent))] = uses
    names = {where: {use.split()[1] for use in uses} for where, uses in problems.items()}
    assert names == DIRECT_READERS, "\n".join(f"{where}: {uses}" for where, uses in problems.items())


def test_the_private_api_check_sees_each_kind_of_use(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from optuna.storages._heartbeat import BaseHeartbeat\n"
        "def f(study, trial):\n"
        "    self._storage = 1\n"  # a qhpo object's own attribute of that name is fine
        "    study._storage.get_trial(trial._trial_id)\n"
        "    return getattr(trial, 'system_attrs')['fixed_params']\n"
    )
    assert sorted(optuna_private_uses(module)) == [
        "1 optuna.storages._heartbeat",
        "4 _storage",
        "4 _trial_id",
        "5 fixed_params",
        "5 system_attrs",
    ]
    assert optuna_private_uses(SHIM)  # the shim itself does use them


def test_every_qhpo_attribute_key_is_listed_in_the_schema():
    from qhpo._optuna_schema import ATTRIBUTES

    keys = set()
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "set_user_attr",
                "set_trial_user_attr",
            ):
                key = node.args[-2] if len(node.args) >= 2 else None
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    keys.add(key.value)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id.endswith("_ATTR"):
                    keys.add(node.value.value)
    assert keys, "the scan found no key"
    unlisted = {k for k in keys if k not in ATTRIBUTES}
    assert not unlisted, f"keys missing from qhpo._optuna_schema.ATTRIBUTES: {sorted(unlisted)}"
    for attribute in ATTRIBUTES.values():
        assert attribute.key.startswith("qhpo.") and attribute.on in ("trial", "study") and attribute.meaning


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


def test_the_library_reports_numbers_and_leaves_the_acceptance_target_to_the_benchmarks():
    import qhpo.replay

    assert not hasattr(qhpo.replay, "verdict") and not hasattr(qhpo.replay, "TARGET_COST_RATIO")
    holders = [
        str(path.relative_to(SOURCE.parent))
        for path in sorted(SOURCE.rglob("*.py"))
        if "TARGET_COST_RATIO" in path.read_text(encoding="utf-8")
        or any(name == "suite_target" for _, name in _imported_modules(ast.parse(path.read_text(encoding="utf-8"))))
    ]
    assert holders == []
    assert (SOURCE.parent.parent / "benchmarks" / "suite_target.py").is_file()


SKLEARN_SHIM = SOURCE / "qsvr" / "_sklearn_private.py"


def sklearn_private_imports(path: Path) -> list[str]:
    """``line name`` of each import in ``path`` of a private scikit-learn module or name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "sklearn":
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.split(".")[0] == "sklearn"]
        else:
            continue
        found += [f"{node.lineno} {n}" for n in names if any(p.startswith("_") for p in n.split(".")[1:])]
    return sorted(set(found))


def test_only_the_sklearn_shim_imports_scikit_learns_private_names(tmp_path):
    problems = {
        str(path.relative_to(SOURCE.parent)): sklearn_private_imports(path)
        for path in sorted(SOURCE.rglob("*.py"))
        if path != SKLEARN_SHIM and sklearn_private_imports(path)
    }
    assert problems == {}
    assert sklearn_private_imports(SKLEARN_SHIM)  # the shim is where they are
    module = tmp_path / "m.py"
    module.write_text("from sklearn.base import _fit_context, clone\nimport sklearn.utils._param_validation\n")
    assert sklearn_private_imports(module) == ["1 sklearn.base._fit_context", "2 sklearn.utils._param_validation"]
