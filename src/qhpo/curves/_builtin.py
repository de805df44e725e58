"""The recorded curve tables that ship inside the package.

The tables live in ``qhpo/data/curves/`` (a CSV table and its JSON sidecar each, with the
licence texts and a ``NOTICE`` naming every table's source). A built-in table is named by its
file stem, for example ``cifar10_cnn``; wherever a table path is accepted, such a name is
accepted too. A path that exists always wins over a built-in name.

Example:
    >>> from qhpo.curves import builtin_table_names, resolve_curve_table
    >>> "cifar10_cnn" in builtin_table_names()
    True
    >>> resolve_curve_table("cifar10_cnn").name
    'cifar10_cnn.csv'
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from qhpo._errors import QhpoError

_PACKAGE = "qhpo"
_FOLDER = ("data", "curves")


@dataclass(frozen=True)
class BuiltinTable:
    """What a built-in table's sidecar says about it, without reading the table.

    Attributes:
        name: The name to pass as ``--curves`` (the file stem).
        workload: The recorded workload in a few words (the sidecar's description up to
            its first semicolon).
        metric: Name of the recorded metric.
        mode: ``"max"`` when higher is better, ``"min"`` when lower is better.
        trials: Number of trials (rows).
        epochs: Number of epochs (columns ``epoch_1`` .. ``epoch_E``).
        source: Where the curves were recorded and published.
        license: The licence the table is shipped under (SPDX identifier).
        path: The CSV file inside the installed package.
    """

    name: str
    workload: str
    metric: str
    mode: str
    trials: int
    epochs: int
    source: str
    license: str
    path: Path


def builtin_tables_folder() -> Path:
    """The folder of the built-in tables inside the installed package."""
    folder = resources.files(_PACKAGE).joinpath(*_FOLDER)
    # setuptools installs qhpo as plain files, so the resource is a real folder on disk.
    return Path(os.fspath(folder))


def builtin_table_paths() -> list[Path]:
    """The CSV files of the built-in tables, sorted by name."""
    folder = builtin_tables_folder()
    return sorted(p for p in folder.glob("*.csv") if p.with_suffix(".json").is_file())


def builtin_table_names() -> list[str]:
    """The names of the built-in tables, sorted."""
    return [path.stem for path in builtin_table_paths()]


def builtin_tables() -> list[BuiltinTable]:
    """Every built-in table with its workload, metric, size, source and licence, sorted by name."""
    tables = []
    for path in builtin_table_paths():
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        tables.append(
            BuiltinTable(
                name=path.stem,
                workload=str(meta["description"]).split(";")[0].strip().rstrip("."),
                metric=str(meta["metric"]),
                mode=str(meta["mode"]),
                trials=int(meta["trials"]),
                epochs=int(meta["epochs"]),
                source=str(meta["source"]),
                license=str(meta["license"]),
                path=path,
            )
        )
    return tables


def resolve_curve_table(spec: str | os.PathLike) -> Path:
    """The path of a curve table given as a path or as the name of a built-in table.

    A path that exists is returned as it is (a user's file always wins over a built-in name);
    otherwise ``spec`` must be one of :func:`builtin_table_names`.

    Raises:
        QhpoError: ``spec`` is neither an existing path nor a built-in name.
    """
    path = Path(spec)
    if path.exists():
        return path
    by_name = {p.stem: p for p in builtin_table_paths()}
    if str(spec) in by_name:
        return by_name[str(spec)]
    raise QhpoError(
        f"curve table {spec} does not exist and is not the name of a built-in table; pass the path of a CSV "
        "table or one of the names that qhpo bench --list prints."
    )
