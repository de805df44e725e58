"""qhpo: hyperparameter optimisation with predictive early stopping.

A support vector regressor whose training problem is a QUBO (solved by a quantum or a
classical annealer) predicts each trial's final metric from its partial learning curve;
stopping policies turn those predictions into CONTINUE/STOP decisions for Optuna, Ray Tune
and the replay benchmark.
"""

__version__ = "0.1.0"

from qhpo._errors import QhpoError

__all__ = ["QhpoError", "__version__"]
