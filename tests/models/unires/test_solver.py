"""The ADMM's inner solver: conjugate gradients with UniRes' max-gain stopping rule."""
import numpy as np
import torch

from srprep.models.unires.solver import conjugate_gradient


def _system(seed: int, n: int = 60, condition: float = 1e3):
    """A symmetric positive definite system with the given condition number."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(np.geomspace(1, condition, n)) @ q.T, rng.normal(size=n)


def _max_gain_iterations(a, b, tol, max_iter=20):
    """The rule as UniRes states it, written out in NumPy: q_k = alpha_k (alpha_k p'Ap +
    2 r'r) with the residual after the step; stop when |q_k-1 - q_k| / range(q) < tol."""
    x = np.zeros_like(b)
    r = b - a @ x
    p, rr, qs = r.copy(), r @ r, []
    for k in range(1, max_iter + 1):
        ap = a @ p
        alpha = rr / (p @ ap)
        x, r = x + alpha * p, r - alpha * ap
        rr_new = r @ r
        qs.append(alpha * (alpha * (p @ ap) + 2 * rr_new))
        if len(qs) > 1 and abs(qs[-2] - qs[-1]) / (max(qs) - min(qs)) < tol:
            return k, x
        p, rr = r + rr_new / rr * p, rr_new
    return max_iter, x


def test_cg_solves_the_system_exactly_without_stopping_rule():
    a, b = _system(0, n=12, condition=10.0)
    at = torch.tensor(a)
    x, k = conjugate_gradient(lambda v: at @ v, torch.tensor(b), torch.zeros(12, dtype=torch.float64),
                              max_iter=12, tol=0.0)
    assert k == 12
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-9, atol=1e-12)


def test_max_gain_rule_uses_the_updated_residual():
    # with the residual before the step the solver stopped after 14, 20 and 15 iterations
    for seed, tol, expected in [(0, 1e-2, 11), (1, 1e-2, 16), (2, 3e-2, 9)]:
        a, b = _system(seed)
        at = torch.tensor(a)
        x, k = conjugate_gradient(lambda v: at @ v, torch.tensor(b),
                                  torch.zeros(len(b), dtype=torch.float64), tol=tol)
        k_ref, x_ref = _max_gain_iterations(a, b, tol)
        assert k == k_ref == expected
        np.testing.assert_allclose(x.numpy(), x_ref, rtol=1e-8, atol=1e-10)
