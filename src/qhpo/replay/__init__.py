"""Replaying recorded learning curves through stopping rules: the benchmark behind ``qhpo bench``."""

from qhpo.replay._agents import OptunaPrunerAgent, PolicyAgent
from qhpo.replay._simulator import ReplayAgent, ReplayOutcome, simulate

__all__ = ["OptunaPrunerAgent", "PolicyAgent", "ReplayAgent", "ReplayOutcome", "simulate"]
