"""Learning-curve tables and the features that predictors read from them."""

from qhpo.curves._features import CurveFeaturizer, HyperparameterEncoder
from qhpo.curves._table import CurveTable, read_curve_table

__all__ = ["CurveFeaturizer", "CurveTable", "HyperparameterEncoder", "read_curve_table"]
