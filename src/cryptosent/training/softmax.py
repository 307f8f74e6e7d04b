"""Multinomial logistic regression on sparse features with soft targets (for distillation).

Full-batch L-BFGS (scipy) on the weighted cross-entropy plus an L2 penalty: deterministic,
so the same data and seed give the same weights. Training only: needs numpy and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass
class SoftmaxModel:
    """Weights (features x classes) and a bias per class."""

    weights: NDArray[np.float64]
    bias: NDArray[np.float64]

    def logits(self, x: object) -> NDArray[np.float64]:
        """Raw class scores for the rows of ``x`` (dense or scipy sparse)."""
        return np.asarray(x @ self.weights) + self.bias  # type: ignore[operator]

    def proba(self, x: object, temperature: float = 1.0) -> NDArray[np.float64]:
        """Class probabilities, softmax of logits divided by ``temperature``."""
        return softmax(self.logits(x) / temperature)


def softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise softmax."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def fit(
    x: object,
    targets: NDArray[np.float64],
    sample_weight: NDArray[np.float64] | None = None,
    l2: float = 1e-4,
    max_iter: int = 400,
) -> SoftmaxModel:
    """Fit on rows ``x`` (n x d) and target distributions ``targets`` (n x k)."""
    from scipy.optimize import minimize

    n, k = targets.shape
    d = x.shape[1]  # type: ignore[attr-defined]
    w = np.ones(n) if sample_weight is None else sample_weight
    w = w / w.sum()
    xt = x.T  # type: ignore[attr-defined]

    def loss(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        weights = theta[: d * k].reshape(d, k)
        bias = theta[d * k :]
        z = np.asarray(x @ weights) + bias  # type: ignore[operator]
        z -= z.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(z).sum(axis=1, keepdims=True))
        logp = z - logsum
        value = -float((w[:, None] * targets * logp).sum()) + 0.5 * l2 * float((weights**2).sum())
        grad_z = w[:, None] * (np.exp(logp) - targets)
        grad_w = np.asarray(xt @ grad_z) + l2 * weights
        return value, np.concatenate([grad_w.ravel(), grad_z.sum(axis=0)])

    theta0 = np.zeros(d * k + k)
    result = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    theta = result.x
    return SoftmaxModel(theta[: d * k].reshape(d, k), theta[d * k :])
