"""Input checks shared by the hot-spot modules: bad input gets a clear :class:`ValueError`."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def as_values(values: object, name: str = "values") -> np.ndarray:
    """A finite 1-D float array of at least three observations."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size < 3:
        raise ValueError(f"{name} needs at least 3 observations, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return arr


def as_coords(coords: object, name: str = "coords") -> np.ndarray:
    """A finite ``(n, 2)`` float array."""
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return arr


def as_weights(weights: object, n: int) -> sparse.csr_array:
    """A square ``n x n`` CSR array of finite, non-negative weights (a copy is never modified)."""
    if not sparse.issparse(weights):
        try:
            weights = sparse.csr_array(np.asarray(weights, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"weights must be a sparse or dense matrix: {exc}") from None
    w = sparse.csr_array(weights, dtype=np.float64)
    if w.shape != (n, n):
        raise ValueError(f"weights must have shape ({n}, {n}) to match the values, got {w.shape}")
    if w.data.size and (not np.isfinite(w.data).all() or (w.data < 0).any()):
        raise ValueError("weights must be finite and non-negative")
    return w


def positive(value: object, name: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return out


def probability(value: object, name: str) -> float:
    out = positive(value, name)
    if out >= 1:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return out


def choice(value: object, name: str, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value.lower()
