"""Stopping policies: pure decision logic shared by the Optuna, Ray Tune and replay adapters."""

from qhpo.policies._base import Decision, StoppingPolicy, TrialStatus, TrialView

__all__ = ["Decision", "StoppingPolicy", "TrialStatus", "TrialView"]
