"""Learning-curve tables and the features that predictors read from them."""

from qhpo.curves._builtin import (
    BuiltinTable,
    builtin_table_names,
    builtin_table_paths,
    builtin_tables,
    builtin_tables_folder,
    resolve_curve_table,
)
from qhpo.curves._features import CurveFeaturizer, HyperparameterEncoder
from qhpo.curves._table import CurveTable, read_curve_table

__all__ = [
    "BuiltinTable",
    "CurveFeaturizer",
    "CurveTable",
    "HyperparameterEncoder",
    "builtin_table_names",
    "builtin_table_paths",
    "builtin_tables",
    "builtin_tables_folder",
    "read_curve_table",
    "resolve_curve_table",
]
