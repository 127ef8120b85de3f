"""Similarity of the ASR's hidden representations of processed vs reference speech (E032, §4.4 of the notes).

A signal has four representations: processed (MSBG) left/right ``P_L, P_R`` and reference left/right
``R_L, R_R``, each ``[frames, d_model]``. All four ear pairings (R_L,P_L), (R_L,P_R), (R_R,P_L), (R_R,P_R)
are compared.

* :func:`encoder_similarity`: zero-pad the four sequences at the end to the longest, frame-wise cosine
  similarity per pairing (torch semantics, ``eps = 1e-8``: a zero frame gives 0), **max over the
  pairings per frame, then mean over all frames** (padding included).
* :func:`decoder_similarity`: per pairing, a DTW alignment of reference and processed sequence
  (``fastdtw``, radius 1, cosine distance = 1 - cosine), the **mean cosine similarity along the
  path, then max over the pairings**. ``dtw="exact"`` uses exact DTW instead (documented variant;
  vectorised cost matrix and anti-diagonal recursion).

Faithfulness: the original called ``fastdtw.fastdtw(ref, proc, dist=scipy.spatial.distance.cosine)``.
fastdtw 0.3.4 has a compiled variant (``fastdtw._fastdtw``) that is used when present and breaks exact
cost ties in another order; we always call the pure-Python module ``fastdtw.fastdtw``, as the oracle
did. Cosines are computed with ``torch.nn.functional.cosine_similarity`` in float32, as the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from fastdtw.fastdtw import fastdtw as _fastdtw_pure_python
from scipy.spatial.distance import cosine as _cosine_distance

DTWMethod = Literal["fastdtw", "exact"]
PAIRINGS: tuple[tuple[str, int, int], ...] = (("LL", 0, 0), ("LR", 0, 1), ("RL", 1, 0), ("RR", 1, 1))
"""Pairing name, reference index (0 = left, 1 = right), processed index."""
COSINE_EPS = 1e-8  # torch.nn.functional.cosine_similarity default


def _as_tensor(rep: torch.Tensor | npt.ArrayLike, name: str) -> torch.Tensor:
    rep = (
        torch.as_tensor(np.asarray(rep, dtype=np.float32))
        if not torch.is_tensor(rep)
        else rep.detach().cpu().float()
    )
    if rep.ndim != 2 or rep.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a non-empty [frames, dim] representation, got shape {tuple(rep.shape)}"
        )
    return rep


def _check_dims(reps: Sequence[torch.Tensor]) -> None:
    dims = {int(r.shape[1]) for r in reps}
    if len(dims) != 1:
        raise ValueError(f"representations must share their feature dimension, got {sorted(dims)}")


def encoder_similarity(left_proc, right_proc, left_ref, right_ref) -> float:
    """Frame-wise max over the 4 ear pairings of the cosine similarity, averaged over frames.

    Parameters
    ----------
    left_proc, right_proc, left_ref, right_ref : torch.Tensor or array, shape [frames, dim]
        Encoder representations; lengths may differ (shorter ones are zero-padded at the end).

    Returns
    -------
    float
        Similarity in [-1, 1] (float32 arithmetic, as the original).

    Examples
    --------
    >>> x = torch.randn(5, 4)
    >>> round(encoder_similarity(x, x, x, x), 6)
    1.0
    """
    reps = [
        _as_tensor(r, n)
        for r, n in zip(
            (left_proc, right_proc, left_ref, right_ref),
            ("left_proc", "right_proc", "left_ref", "right_ref"),
            strict=True,
        )
    ]
    _check_dims(reps)
    n_frames = max(r.shape[0] for r in reps)
    padded = torch.zeros(4, n_frames, reps[0].shape[1], dtype=torch.float32)
    for i, rep in enumerate(reps):
        padded[i, : rep.shape[0]] = rep
    proc, ref = padded[:2], padded[2:]
    ref_idx = torch.tensor([r for _, r, _ in PAIRINGS])
    proc_idx = torch.tensor([p for _, _, p in PAIRINGS])
    cos = torch.nn.functional.cosine_similarity(
        ref[ref_idx], proc[proc_idx], dim=-1, eps=COSINE_EPS
    )  # [4, T]
    return float(cos.max(dim=0).values.mean())


def cosine_distance_matrix(ref: torch.Tensor, proc: torch.Tensor) -> npt.NDArray[np.float64]:
    """``1 - cos`` between every reference and processed frame, ``[len(ref), len(proc)]`` (float64).

    Zero frames get distance 1 (cosine 0), where scipy's ``cosine`` would give NaN.
    """
    r = ref.double()
    p = proc.double()
    norms = torch.linalg.vector_norm(r, dim=1, keepdim=True) * torch.linalg.vector_norm(p, dim=1).unsqueeze(0)
    cos = (r @ p.T) / norms.clamp(min=COSINE_EPS**2)
    return (1.0 - cos).clamp(0.0, 2.0).numpy()


def exact_dtw(cost: npt.NDArray[np.float64]) -> tuple[float, list[tuple[int, int]]]:
    """Exact DTW on a cost matrix, with fastdtw's step order for ties.

    The accumulated cost ``D[i, j] = cost[i, j] + min(D[i-1, j], D[i, j-1], D[i-1, j-1])`` is filled one
    anti-diagonal at a time (vectorised); the path is traced back from the end, preferring the
    predecessor (i-1, j), then (i, j-1), then (i-1, j-1) among equal costs, as ``fastdtw.dtw`` does.

    Parameters
    ----------
    cost : ndarray, shape [n, m]
        Local distances.

    Returns
    -------
    distance : float
        Accumulated cost of the optimal path.
    path : list of (int, int)
        From (0, 0) to (n - 1, m - 1).

    Examples
    --------
    >>> exact_dtw(np.array([[0.0, 1.0], [1.0, 0.0]]))
    (0.0, [(0, 0), (1, 1)])
    """
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for diag in range(2, n + m + 1):  # cells (i, j) with i + j = diag, 1-based
        i = np.arange(max(1, diag - m), min(n, diag - 1) + 1)
        j = diag - i
        best = np.minimum(np.minimum(acc[i - 1, j], acc[i, j - 1]), acc[i - 1, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    path = []
    i, j = n, m
    while (i, j) != (0, 0):
        path.append((i - 1, j - 1))
        options = ((acc[i - 1, j], i - 1, j), (acc[i, j - 1], i, j - 1), (acc[i - 1, j - 1], i - 1, j - 1))
        _, i, j = min(options, key=lambda o: o[0])
    path.reverse()
    return float(acc[n, m]), path


def dtw_align(
    ref, proc, method: DTWMethod = "fastdtw", radius: int = 1
) -> tuple[float, list[tuple[int, int]]]:
    """DTW alignment of a reference and a processed sequence with cosine distance.

    Parameters
    ----------
    ref, proc : torch.Tensor or array, shape [frames, dim]
    method : {"fastdtw", "exact"}
        ``fastdtw`` (faithful: the pure-Python fastdtw 0.3.4 with ``scipy.spatial.distance.cosine``)
        or exact DTW.
    radius : int
        fastdtw search radius (1 in the recipe).

    Returns
    -------
    distance : float
    path : list of (int, int)
        (reference index, processed index) pairs.
    """
    ref_t, proc_t = _as_tensor(ref, "ref"), _as_tensor(proc, "proc")
    _check_dims([ref_t, proc_t])
    if method == "fastdtw":
        distance, path = _fastdtw_pure_python(
            ref_t.numpy(), proc_t.numpy(), radius=radius, dist=_cosine_distance
        )
        return float(distance), [(int(a), int(b)) for a, b in path]
    if method == "exact":
        return exact_dtw(cosine_distance_matrix(ref_t, proc_t))
    raise ValueError(f"dtw method must be 'fastdtw' or 'exact', got {method!r}")


def path_mean_cosine(ref, proc, path: Sequence[tuple[int, int]]) -> float:
    """Mean cosine similarity (float32, torch semantics) of the frame pairs along a DTW path."""
    ref_t, proc_t = _as_tensor(ref, "ref"), _as_tensor(proc, "proc")
    idx = torch.as_tensor(np.asarray(path, dtype=np.int64).reshape(-1, 2))
    cos = torch.nn.functional.cosine_similarity(ref_t[idx[:, 0]], proc_t[idx[:, 1]], dim=-1, eps=COSINE_EPS)
    return float(cos.mean())


def decoder_pairings(
    left_proc, right_proc, left_ref, right_ref, method: DTWMethod = "fastdtw", radius: int = 1
) -> dict[str, dict]:
    """Per ear pairing (``LL``, ``LR``, ``RL``, ``RR``: reference ear, processed ear) the DTW result.

    Returns
    -------
    dict
        ``{pairing: {"mean_cos": float, "distance": float, "path": list of (ref_idx, proc_idx)}}``.
    """
    procs = (_as_tensor(left_proc, "left_proc"), _as_tensor(right_proc, "right_proc"))
    refs = (_as_tensor(left_ref, "left_ref"), _as_tensor(right_ref, "right_ref"))
    _check_dims([*procs, *refs])
    out = {}
    for name, r, p in PAIRINGS:
        distance, path = dtw_align(refs[r], procs[p], method=method, radius=radius)
        out[name] = {
            "mean_cos": path_mean_cosine(refs[r], procs[p], path),
            "distance": distance,
            "path": path,
        }
    return out


def decoder_similarity(
    left_proc, right_proc, left_ref, right_ref, method: DTWMethod = "fastdtw", radius: int = 1
) -> float:
    """Max over the 4 ear pairings of the mean cosine similarity along the DTW path.

    Parameters
    ----------
    left_proc, right_proc, left_ref, right_ref : torch.Tensor or array, shape [frames, dim]
        Decoder representations (lengths may differ).
    method : {"fastdtw", "exact"}
        DTW flavour (``fastdtw`` = the original).
    radius : int
        fastdtw radius.

    Returns
    -------
    float

    Examples
    --------
    >>> x = torch.randn(6, 4)
    >>> round(decoder_similarity(x, x, x, x), 6)
    1.0
    """
    pairings = decoder_pairings(left_proc, right_proc, left_ref, right_ref, method=method, radius=radius)
    # float32 max as in the original (torch.max over the stacked float32 means)
    return float(torch.tensor([p["mean_cos"] for p in pairings.values()], dtype=torch.float32).max())
