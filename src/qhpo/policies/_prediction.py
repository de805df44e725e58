"""Predictions of a trial's later metric from its partial curve, refitted as curves accrue.

A :class:`PredictionService` keeps one :class:`qhpo.predictors.FinalValuePredictor` per key
``(t, target)``: the model reads the first ``t`` epochs of a curve and predicts its value
at epoch ``target`` (the final epoch unless a policy asks for a rung). It is trained on the
curves that reached ``target`` and refitted whenever their number ``n`` has grown past

    n_next = min(ceil(growth * n_fit), n_fit + step)

A run of ``N`` trials thus costs ``O(log N)`` fits early on and one fit per ``step``
curves later, never one fit per decision. With ``background=False`` the fit happens inside
:meth:`PredictionService.predict` (deterministic replay); with ``background=True`` the fit
is submitted to a one-thread :class:`concurrent.futures.ThreadPoolExecutor` while
:meth:`~PredictionService.predict` answers at once with the last fitted model, or ``None``
("no model yet": the policy continues the trial). A background fit that fails keeps the
last model; :attr:`~PredictionService.fitted`, :attr:`~PredictionService.n_fits` and
:attr:`~PredictionService.n_failed_fits` say whether the predictor ever fitted.

With ``relative=True`` the model learns the change ``y_target - a_t`` after the decision
epoch instead of ``y_target`` itself, with the anchor ``a_t = mean(c_{t-w+1}..c_t)`` (``w``
= ``anchor_window``, 1 by default: ``a_t = c_t``), and the prediction adds ``a_t`` back;
the model then spends its capacity on what the prefix does not already say.

When the annealer behind a ``"qsvr"`` or ``"qsvr-ensemble"`` model fails (no D-Wave token,
an unreachable solver, a sampler that raises), the service warns once and uses the
classical ``"svr"`` model from then on: a failing annealer never stops an HPO run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Any

import numpy as np

from qhpo._checks import check_int
from qhpo._seeds import derived_seed
from qhpo.predictors import MODEL_NAMES, ORACLE, ORACLE_FINAL, ORACLE_REFUSAL

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _FittedModel:
    predictor: Any
    n_curves: int  # training curves it saw
    model: Any  # the model name it was fitted with (after any fallback)


class PredictionService:
    """Fits and serves final-value predictors for a stopping policy.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> curves = np.cumsum(rng.uniform(0, 0.1, size=(30, 20)), axis=1)
        >>> service = PredictionService("svr", random_state=0)
        >>> service.update(curves)
        >>> mean, std = service.predict(5, curves[:3, :5])
        >>> mean.shape, std.shape
        ((3,), (3,))

    Args:
        model: ``"svr"``, ``"qsvr"``, ``"qsvr-ensemble"`` or an estimator object, passed
            to :class:`qhpo.predictors.FinalValuePredictor`.
        sampler: A ``dimod.Sampler`` or a sampler name for :func:`qhpo.samplers.make_sampler`
            (annealer models only; ``None`` lets the predictor choose its default).
        background: Fit in a worker thread instead of inside :meth:`predict`; call
            :meth:`close` when done so that queued fits are dropped.
        random_state: Seed of the predictors (training subsamples, annealer): the ``k``-th
            fit is seeded with ``SeedSequence(random_state, spawn_key=(k,))``; fits are
            reproducible for a given seed and sequence of calls when ``background=False``.
        differences: Features include first and second differences of the prefix.
        hyperparameters: Features include the numeric hyperparameters.
        relative: Learn the change after the decision epoch, not the value itself.
        anchor_window: Epochs averaged into the anchor of ``relative`` predictions.
        num_reads: Annealer reads per QUBO (``None``: the predictor's default).
        min_curves: Curves needed before the first fit of a key.
        growth: Refit when the number of curves reaches ``growth`` times the last fit's.
        step: ... or when it has grown by ``step`` curves, whichever comes first.
        error_estimate: The predictors estimate their held-out error (cross-validation
            fits); without it the returned std is the model's own spread only.

    Attributes:
        n_fits: Fits that succeeded.
        n_failed_fits: Fits that raised (with the classical fallback too); the last
            model, if any, stays in use.
        last_fit_error: ``"Type: message"`` of the latest failed fit, or None.
        fallback_reason: Why the annealer model was replaced by the classical SVR, or None.
        fit_seconds, predict_seconds: Time spent fitting and predicting.
    """

    def __init__(
        self,
        model: Any = "svr",
        *,
        sampler: Any = None,
        background: bool = False,
        random_state: int | None = None,
        differences: bool = False,
        hyperparameters: bool = False,
        relative: bool = False,
        anchor_window: int = 1,
        num_reads: int | None = None,
        min_curves: int = 5,
        growth: float = 1.25,
        step: int = 10,
        error_estimate: bool = True,
    ):
        if isinstance(model, str) and model in (ORACLE, ORACLE_FINAL):
            raise ValueError(ORACLE_REFUSAL)
        if isinstance(model, str) and model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {', '.join(MODEL_NAMES)} or an estimator, got {model!r}")
        if not float(growth) > 1.0:
            raise ValueError(f"growth must be greater than 1, got {growth}")
        self.model = model
        self.sampler = sampler
        self.background = bool(background)
        self.random_state = random_state
        self.differences = bool(differences)
        self.hyperparameters = bool(hyperparameters)
        self.relative = bool(relative)
        self.anchor_window = check_int("anchor_window", anchor_window, least=1)
        self.num_reads = None if num_reads is None else check_int("num_reads", num_reads, least=1)
        self.min_curves = check_int("min_curves", min_curves, least=2)
        self.growth = float(growth)
        self.step = check_int("step", step, least=1)
        self.error_estimate = bool(error_estimate)

        self.active_model = model  # becomes "svr" after a fallback
        self.fallback_reason: str | None = None
        self.fit_seconds = 0.0
        self.predict_seconds = 0.0
        self.n_fits = 0
        self.n_failed_fits = 0
        self.last_fit_error: str | None = None

        self._lock = threading.Lock()
        self._curves = np.zeros((0, 0))
        self._params: np.ndarray | None = None
        self._models: dict[tuple[int, int], _FittedModel] = {}
        self._pending: dict[tuple[int, int], Future] = {}  # background fits submitted, not yet done
        self._executor: ThreadPoolExecutor | None = None
        self._fit_counter = 0
        self._sampler_object = None

    # -- training data ---------------------------------------------------------------------
    def update(self, curves, params=None) -> None:
        """Replace the training pool by ``curves`` (n, E), the curves of completed trials.

        Curves may be longer than a key's target; rows shorter than a target are not used
        for that key. ``params`` (n, H) is needed when ``hyperparameters=True``.
        """
        curves = np.asarray(curves, dtype=float)
        if curves.ndim != 2:
            raise ValueError(f"curves must be a 2-d array (trials, epochs), got shape {curves.shape}")
        if self.hyperparameters:
            if params is None:
                raise ValueError("params is required when the service uses hyperparameters")
            params = np.asarray(params, dtype=float)
            if params.ndim != 2:
                params = params.reshape(len(curves), -1) if params.size else np.zeros((len(curves), 0))
        with self._lock:
            self._curves = curves
            self._params = params if self.hyperparameters else None

    @property
    def n_curves(self) -> int:
        return int(self._curves.shape[0])

    @property
    def version(self) -> int:
        """A number that grows whenever a fitted model lands (inline or in the background):
        a cache of decisions that read predictions is keyed on it."""
        return self.n_fits

    @property
    def fitted(self) -> bool:
        """Whether any fit has succeeded (False: every decision so far rested on no model)."""
        return self.n_fits > 0

    # -- predictions -----------------------------------------------------------------------
    def ready(self, t: int, target: int | None = None) -> bool:
        """Whether a model for ``(t, target)`` has been fitted."""
        return (int(t), self._target(target)) in self._models

    def predict(self, t: int, curves, params=None, *, target: int | None = None, keys=None):
        """Mean and standard deviation of the value at ``target`` for each prefix.

        Args:
            t: Epochs of the prefix the model reads (the decision epoch).
            curves: Curves of shape (m, >=t); only the first ``t`` epochs are read.
            params: Hyperparameters (m, H) when the service uses them.
            target: Epoch whose value is predicted (``None``: the last epoch of the
                training curves).
            keys: The trials' keys, one per prefix (unused by a learned model; the
                replay's oracle reads the recorded curves of these rows).

        Returns:
            ``(mean, std)`` arrays of shape (m,) in the metric's units, or ``None`` while
            no model for this key exists (fewer than ``min_curves`` curves, or the first
            background fit still running).
        """
        t = check_int("t", t, least=1)
        key = (t, self._target(target))
        self._maybe_refit(key)
        fitted = self._models.get(key)
        if fitted is None:
            return None
        curves = np.asarray(curves, dtype=float)
        if curves.ndim == 1:
            curves = curves[None, :]
        start = time.perf_counter()
        try:
            mean, std = fitted.predictor.predict(
                curves[:, :t], params if self.hyperparameters else None, return_std=True
            )
        except Exception:
            if not self.background:
                raise
            # a live study must not lose a trial to a prediction error: answer "no model"
            _log.exception("predicting from the first %d epochs failed; the trial continues", t)
            return None
        finally:
            self.predict_seconds += time.perf_counter() - start
        mean = np.asarray(mean, dtype=float)
        if self.relative:
            mean = mean + self._anchor(curves, t)
        return mean, np.asarray(std, dtype=float)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until background fits submitted so far are done (True) or ``timeout`` passes."""
        with self._lock:
            pending = list(self._pending.values())
        return not wait_for(pending, timeout=timeout).not_done

    def close(self) -> None:
        """Drop queued background fits and release the worker thread; returns at once.

        A fit already running finishes in its thread; nothing is pending afterwards, so a
        later :meth:`wait` returns at once. A later background refit starts a new worker.
        """
        with self._lock:
            executor, self._executor = self._executor, None
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.cancel()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- internals -------------------------------------------------------------------------
    def _target(self, target: int | None) -> int:
        if target is not None:
            return int(target)
        return int(self._curves.shape[1]) if self._curves.size else 0

    def _anchor(self, curves: np.ndarray, t: int) -> np.ndarray:
        """``a_t``: mean of the last ``anchor_window`` epochs of the prefix."""
        return curves[:, max(0, t - self.anchor_window) : t].mean(axis=1)

    def _usable(self, target: int) -> np.ndarray:
        """Rows of the pool finite up to ``target`` (shorter rows are NaN-padded)."""
        curves = self._curves
        if curves.size == 0 or curves.shape[1] < target:
            return np.zeros(curves.shape[0], dtype=bool)
        return np.all(np.isfinite(curves[:, :target]), axis=1)

    def _training_set(self, key):
        t, target = key
        rows = self._usable(target)
        if target < t or not rows.any():
            return None
        params = self._params
        return self._curves[rows, :target].copy(), (None if params is None else params[rows].copy())

    def _stale(self, key) -> bool:
        n = int(self._usable(key[1]).sum())
        if n < self.min_curves:
            return False
        fitted = self._models.get(key)
        if fitted is None:
            return True
        n_next = min(math.ceil(self.growth * fitted.n_curves), fitted.n_curves + self.step)
        return n >= max(n_next, fitted.n_curves + 1)

    def _maybe_refit(self, key) -> None:
        future = None
        with self._lock:
            running = self._pending.get(key)
            if (running is not None and not running.done()) or not self._stale(key):
                return
            data = self._training_set(key)
            if data is None:
                return
            self._fit_counter += 1
            seed = None if self.random_state is None else derived_seed(self.random_state, self._fit_counter)
            if self.background:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qhpo-prediction-service")
                future = self._pending[key] = self._executor.submit(self._fit, key, data, seed)
        if future is None:
            self._fit(key, data, seed)
        else:  # outside the lock: a future that is already done runs its callback in this thread
            future.add_done_callback(lambda done, key=key: self._fit_done(key, done))

    def _fit_done(self, key, future: Future) -> None:
        """Callback of a background fit: forget it, and log a failure (a fit that fails even
        classically keeps the last model)."""
        with self._lock:
            if self._pending.get(key) is future:
                del self._pending[key]
        error = None if future.cancelled() else future.exception()
        if error is not None:
            # the first failure with its traceback; repeats (one per decision) only at debug level
            level = logging.ERROR if self.n_failed_fits == 1 else logging.DEBUG
            _log.log(
                level,
                "fitting the predictor for decision epoch %s failed (%d failed fits so far)",
                key[0],
                self.n_failed_fits,
                exc_info=error,
            )

    def _make_predictor(self, model, t: int, seed):
        from qhpo.predictors import FinalValuePredictor

        sampler = self.sampler
        if model != "svr" and isinstance(sampler, str):
            if self._sampler_object is None:  # built once: a QPU connection or compiled annealer is costly
                from qhpo.samplers import make_sampler

                self._sampler_object = make_sampler(sampler)
            sampler = self._sampler_object
        return FinalValuePredictor(
            model,
            t=t,
            differences=self.differences,
            hyperparameters=self.hyperparameters,
            sampler=sampler if model != "svr" else None,
            num_reads=self.num_reads if model != "svr" else None,
            random_state=seed,
            error_estimate=self.error_estimate,
        )

    def _fit(self, key: tuple[int, int], data, seed) -> None:
        (t, target), (curves, params) = key, data
        y = curves[:, target - 1] - (self._anchor(curves, t) if self.relative else 0.0)
        start = time.perf_counter()
        model = self.active_model
        try:
            try:
                predictor = self._make_predictor(model, t, seed).fit(curves, y, params)
            except Exception as error:
                if isinstance(model, str) and model == "svr":
                    raise
                self._fall_back(error)
                model = "svr"
                predictor = self._make_predictor(model, t, seed).fit(curves, y, params)
        except Exception as error:
            with self._lock:
                self.n_failed_fits += 1
                self.last_fit_error = f"{type(error).__name__}: {error}"
            raise
        finally:
            self.fit_seconds += time.perf_counter() - start
        with self._lock:
            self.n_fits += 1
            self._models[key] = _FittedModel(predictor, len(curves), model)

    def _fall_back(self, error: Exception) -> None:
        with self._lock:
            if self.fallback_reason is not None:
                return
            self.active_model = "svr"
            self.fallback_reason = f"{type(error).__name__}: {error}"
        message = (
            f"the {self.model!r} predictor failed ({self.fallback_reason}); "
            "using the classical SVR predictor from now on"
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"PredictionService(model={self.model!r}, background={self.background}, active={self.active_model!r})"
