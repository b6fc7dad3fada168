"""Levenberg-Marquardt on an ``Objective`` (pure numpy).

Damping follows Nielsen (1999) as in Madsen, Nielsen & Tingleff, "Methods for non-linear least squares
problems" (2004), section 3.2: solve (H + lambda diag(H)) step = -g (Marquardt's scaling, so the rotation,
metre and PCA parameters need no common unit); accept a step that lowers the cost and shrink lambda by
max(1/3, 1 - (2 rho - 1)^3), rho = actual / predicted decrease; otherwise grow lambda by nu and double nu.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from app.reconstruction.objective import Evaluation, Objective

_MAX_LAMBDA = 1e12  # beyond this no step lowers the cost: a minimum up to round-off


@dataclass(frozen=True)
class LMResult:
    """evaluation: the objective at the final parameters; iterations: linear solves done; converged: the
    relative decrease fell below the tolerance (or no step could lower the cost any more)."""

    evaluation: Evaluation
    iterations: int
    converged: bool


def _step(H: np.ndarray, g: np.ndarray, lam: float) -> np.ndarray:
    """Damped Gauss-Newton step. Cholesky: the damped matrix is symmetric positive definite, and LAPACK's
    LU (np.linalg.solve) starts BLAS threads that cost milliseconds on a busy machine."""
    A = H + lam * np.diag(np.maximum(np.diag(H), 1e-9))
    try:
        return cho_solve(cho_factor(A, check_finite=False), -g, check_finite=False)
    except LinAlgError:  # round-off broke positive definiteness: least squares still gives a step
        return np.linalg.lstsq(A, -g, rcond=None)[0]


def levenberg_marquardt(obj: Objective, x0: np.ndarray, max_iter: int, tol: float,
                        lambda0: float = 1e-3) -> LMResult:
    """Minimise ``obj`` from x0 with at most ``max_iter`` linear solves; stop when an accepted step lowers
    the cost by less than ``tol`` times the cost."""
    ev = obj.evaluate(x0)
    H, g = obj.normal_equations(ev)
    lam, nu = lambda0, 2.0
    for it in range(1, max_iter + 1):
        step = _step(H, g, lam)
        trial = obj.evaluate(ev.x + step)
        if trial.cost < ev.cost:
            predicted = -(step @ g + 0.5 * step @ H @ step)
            ratio = (ev.cost - trial.cost) / max(predicted, 1e-300)
            lam *= max(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
            nu = 2.0
            small = ev.cost - trial.cost <= tol * ev.cost
            ev = trial
            if small:
                return LMResult(ev, it, True)
            if it < max_iter:
                H, g = obj.normal_equations(ev)
        else:
            lam, nu = lam * nu, nu * 2.0
            if lam > _MAX_LAMBDA:
                return LMResult(ev, it, True)
    return LMResult(ev, max_iter, False)
