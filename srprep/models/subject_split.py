"""Subject-level train/validation/test split shared by every method's training command."""
from __future__ import annotations

import numpy as np


def split_subjects(names: list[str], fractions=(0.7, 0.15, 0.15), seed: int = 0) -> dict:
    """Subject-level split (shuffled with ``seed``); every part non-empty when possible."""
    order = list(sorted(names))
    np.random.default_rng(seed).shuffle(order)
    n = len(order)
    n_val = max(1, int(round(fractions[1] * n))) if n >= 3 else 0
    n_test = max(1, int(round(fractions[2] * n))) if n >= 3 else 0
    n_train = n - n_val - n_test
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val] or order[:1],
            "test": order[n_train + n_val:]}
