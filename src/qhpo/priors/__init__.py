"""Priors over learning curves learned from recorded tables (what a study knows before its
first run ends), and the content fingerprints that keep a replayed table out of its own prior."""

from qhpo.priors._fingerprint import ROW_KEY_EPOCHS, row_keys, table_fingerprint
from qhpo.priors._prior import (
    BUILTIN,
    FEATURES,
    MAX_SHARE,
    REBUILD,
    SHARES,
    CurvePrior,
    FittedPrior,
    PriorTable,
    build_prior,
    builtin_prior_path,
    describe,
    load_prior,
    prior_features,
    prior_for_table,
    quantiles,
    read_prior,
    share_epoch,
    table_statistics,
)

__all__ = [
    "BUILTIN",
    "FEATURES",
    "MAX_SHARE",
    "REBUILD",
    "ROW_KEY_EPOCHS",
    "SHARES",
    "CurvePrior",
    "FittedPrior",
    "PriorTable",
    "build_prior",
    "builtin_prior_path",
    "describe",
    "load_prior",
    "prior_features",
    "prior_for_table",
    "quantiles",
    "read_prior",
    "row_keys",
    "share_epoch",
    "table_fingerprint",
    "table_statistics",
]
