"""Annealers behind one interface: dimod samplers chosen by name."""

from qhpo.samplers._registry import DEFAULT_SAMPLER, SAMPLER_NAMES, make_sampler, resolve_sampler

__all__ = ["DEFAULT_SAMPLER", "SAMPLER_NAMES", "make_sampler", "resolve_sampler"]
