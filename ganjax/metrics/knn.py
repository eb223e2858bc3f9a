"""k-nearest training images of generated samples: the memorisation / mode check of report 004.

For each query q (a generated sample, in pixel or any feature space) and reference set R (the
training images), find the k indices j minimising the Euclidean distance ||q - r_j||_2, ranked
exactly: by the squared distance sum_i (q_i - r_ji)^2 computed in float64 from the input
values (exact integers for 8- and 16-bit integer images such as uint8), ties broken by the
lower reference index.

Why not rank with the fast expansion alone: ||q - r||^2 = ||q||^2 - 2 q.r + ||r||^2 in float32
has an absolute error of order D * 2^-24 * (||q|| + ||r||)^2 (D = features per row). For uint8
32x32x3 images ||q||^2 ~ 1e8, so near-copies at squared distances 1..10 (the very case a
memorisation check looks for) are indistinguishable and the top-k set comes out wrong.
Re-measuring only the float32 winners exactly fixes their distances but not which images
were chosen.

Two passes, exact by construction:

1. Candidates (device, jit, float32): rows are centred on the reference mean (rounded to
   float32; the norms in the error bound are then those of the spread of the data, not of its
   offset) and scaled by a power of two (exact; keeps float32 clear of overflow). uint8 and
   other float32-exact inputs travel to the device as they are and are centred there; others
   are centred in float64 on the host. The expansion above is evaluated one reference chunk
   at a time with one matmul per chunk, and a running top-K' with K' = max(2k, k + 16) is
   kept: memory O(Q * (K' + chunk_size)) whatever the size of R.
2. Exact re-ranking (host, float64): the candidates' squared distances are recomputed as
   sum_i (q_i - r_ji)^2 and sorted by (distance, index).

The candidate set is provably large enough when s~_(K') - delta > s_(k), where s~_(K') is the
largest approximate squared distance kept, s_(k) the k-th exact one and

    delta = 2 (D + 8) 2^-24 (||q - c|| + max_j ||r_j - c||)^2

bounds the float32 error of every approximate distance (rounding to float32, the two norms,
the dot product in any summation order with or without FMA, the two additions) plus the
float64 error of the exact one, with a factor 2 to spare: every reference left out is then
strictly farther than the k-th neighbour, ties included. This assumes IEEE float32
arithmetic in the matmul (`Precision.HIGHEST`, as on CPU and GPU). Queries that fail the test
(the K'-th approximate distance within delta of the k-th exact one: e.g. more than K'
references at nearly the same distance, such as many exact duplicates) are searched again
with 4 K' candidates, until K' = M (exact brute force). On 1,000 x 4,500 MNIST digits the
bound is ~700x the error actually seen and the test passes for every query on the first
pass, at the speed of the previous float32-only search.

`neighbour_grid` lays out each sample followed by its k neighbours as a uint8 picture and
`ganjax.images.save_png` writes it.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.images import save_png, to_uint8  # noqa: F401  (save_png re-exported)

_F32_UNIT_ROUNDOFF = 2.0 ** -24
_MIN_EXTRA_CANDIDATES = 16   # K' = max(2k, k + 16)
_CANDIDATE_GROWTH = 4        # K' multiplier for queries whose candidate set was not provably wide
_EXACT_IN_FLOAT32 = tuple(np.dtype(t) for t in
                          (np.uint8, np.int8, np.uint16, np.int16, np.float16, np.float32))
_RERANK_BLOCK = 1 << 22      # float64 elements per host re-ranking block (32 MiB)


class Neighbours(NamedTuple):
    indices: np.ndarray    # [Q, k] int64 rows of the reference set, nearest first
    distances: np.ndarray  # [Q, k] float64 Euclidean distances, ascending


def nearest_neighbours(queries, reference, k: int = 5, chunk_size: int = 4096) -> Neighbours:
    """The k nearest rows of `reference` to each query, by Euclidean distance, ranked exactly.

    Args:
        queries: [Q, ...] samples (images are flattened), e.g. generated images.
        reference: [M, ...] with the same trailing shape, e.g. the training images (a host
            array; it is sent to the device one chunk at a time).
        k: neighbours per query (k <= M).
        chunk_size: reference rows per device step; bounds the device memory to
            Q x (K' + chunk_size) float32 distances, K' = max(2k, k + 16) candidates.

    Returns:
        `Neighbours(indices, distances)`, nearest first: sorted by the squared distance
        sum_i (q_i - r_i)^2 computed in float64 from the inputs (exact for uint8 / 16-bit
        integer inputs), ties broken by the lower reference index. Identical to a float64
        brute-force search with a stable sort; see the module docstring for why the float32
        candidate pass cannot change the result.

    Raises:
        ValueError: mismatched shapes, k outside [1, M], or NaN / inf in the inputs.
    """
    q = np.asarray(queries)
    ref = np.asarray(reference)
    if q.shape[1:] != ref.shape[1:]:
        raise ValueError(f"nearest_neighbours: queries {q.shape} and reference {ref.shape} "
                         "must have the same trailing shape.")
    num_ref = ref.shape[0]
    if not 1 <= k <= num_ref:
        raise ValueError(f"nearest_neighbours: k={k} must be in [1, {num_ref}] (reference size).")
    dim = int(np.prod(q.shape[1:], dtype=np.int64))
    q = q.reshape(q.shape[0], dim)
    ref = ref.reshape(num_ref, dim)
    for name, x in (("queries", q), ("reference", ref)):
        if x.dtype.kind not in "biuf":
            raise ValueError(f"nearest_neighbours: {name} must be real numbers, got {x.dtype}.")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise ValueError(f"nearest_neighbours: {name} contain NaN or inf.")
    num_q = q.shape[0]
    if num_q == 0:
        return Neighbours(np.zeros((0, k), np.int64), np.zeros((0, k), np.float64))
    chunk_size = max(1, min(chunk_size, num_ref))

    # Centre on (the float32 rounding of) the reference mean and scale by a power of two: both
    # leave the distances' ranking unchanged, and the error bound scales with the centred norms.
    centre = ref.mean(axis=0, dtype=np.float64).astype(np.float32)
    q_centred = q.astype(np.float64) - centre
    q_norm = np.linalg.norm(q_centred, axis=1)
    # Scale so that every centred norm is <= 1 (an upper bound from the extreme values suffices).
    extreme = max(abs(float(ref.max()) - float(centre.min())),
                  abs(float(ref.min()) - float(centre.max())), float(np.abs(q_centred).max()))
    largest = math.sqrt(dim) * extreme
    if not math.isfinite(largest * largest):
        raise ValueError("nearest_neighbours: squared distances overflow float64.")
    scale = 2.0 ** -math.ceil(math.log2(largest)) if largest > 0 else 1.0
    q_dev = jnp.asarray((q_centred * scale).astype(np.float32))
    # uint8 etc. and float32 rows are exact in float32 and are centred on the device (the
    # subtraction errs by <= 2^-24 |r - centre| per element, as a host float64 centring
    # followed by rounding would); other dtypes are centred in float64 on the host first.
    # (Only for moderate magnitudes, so that float32 neither overflows nor goes subnormal.)
    on_device = ((ref.dtype.kind == "b" or ref.dtype in _EXACT_IN_FLOAT32)
                 and 2.0 ** -60 <= extreme <= 2.0 ** 60)
    centre_dev, scale_dev = jnp.asarray(centre), jnp.float32(scale)
    prepare = ((lambda chunk: chunk) if on_device else
               (lambda chunk: ((chunk.astype(np.float64) - centre) * scale).astype(np.float32)))

    indices = np.zeros((num_q, k), np.int64)
    sq_dist = np.zeros((num_q, k), np.float64)
    todo = np.arange(num_q)
    width = min(num_ref, max(2 * k, k + _MIN_EXTRA_CANDIDATES))
    while todo.size:
        approx, cand, ref_norm = _candidates(
            q_dev if todo.size == num_q else q_dev[todo], ref, prepare, on_device, centre_dev,
            scale_dev, width=width, chunk_size=chunk_size)
        exact = _exact_sq_distances(q[todo], ref, cand)
        order = np.lexsort((cand, exact), axis=-1)[:, :k]
        best_i = np.take_along_axis(cand, order, -1)
        best_d = np.take_along_axis(exact, order, -1)
        if width == num_ref:  # every reference was re-measured: exact brute force
            proven = np.ones(todo.size, bool)
        else:
            # Error bound on the scaled squared distances (module docstring). The reference
            # norm comes from float32 sums on the device: inflated by D 2^-23 to cover their
            # round-off. dim * 2^-80 covers float32 underflow (subnormal) round-off.
            ref_bound = ref_norm * (1.0 + dim * 2.0 * _F32_UNIT_ROUNDOFF)
            delta = (2.0 * (dim + 8) * _F32_UNIT_ROUNDOFF * (q_norm[todo] * scale + ref_bound) ** 2
                     + dim * 2.0 ** -80)
            proven = approx[:, -1] - delta > best_d[:, -1] * scale * scale
        indices[todo[proven]], sq_dist[todo[proven]] = best_i[proven], best_d[proven]
        todo = todo[~proven]
        width = min(num_ref, _CANDIDATE_GROWTH * width)
    return Neighbours(indices, np.sqrt(sq_dist))


def _candidates(q_dev, ref, prepare, on_device, centre, scale, *, width, chunk_size):
    """Approximate (float32, scaled) top-`width` squared distances, ascending, with their
    indices [Q, width], and the largest scaled centred reference norm."""
    num_ref = ref.shape[0]
    best_d = jnp.full((q_dev.shape[0], width), jnp.inf, jnp.float32)
    best_i = jnp.full((q_dev.shape[0], width), -1, jnp.int32)
    ref_norm = jnp.zeros((), jnp.float32)
    for start in range(0, num_ref, chunk_size):
        chunk = prepare(ref[start:start + chunk_size])
        valid = chunk.shape[0]
        if valid < chunk_size:
            chunk = np.concatenate([chunk, np.zeros((chunk_size - valid, chunk.shape[1]),
                                                    chunk.dtype)])
        best_d, best_i, ref_norm = _merge_chunk(q_dev, jnp.asarray(chunk), centre, scale, valid,
                                                start, best_d, best_i, ref_norm,
                                                centre_on_device=on_device)
    return (np.asarray(best_d, np.float64), np.asarray(best_i, np.int64),
            float(np.sqrt(np.float64(ref_norm))))


def _exact_sq_distances(q: np.ndarray, ref: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """sum_i (q_i - r_i)^2 in float64 for every candidate: [Q, D], [M, D], [Q, K] -> [Q, K]."""
    out = np.empty(cand.shape, np.float64)
    rows = max(1, _RERANK_BLOCK // max(1, cand.shape[1] * q.shape[1]))
    for lo in range(0, q.shape[0], rows):
        diff = (q[lo:lo + rows, None, :].astype(np.float64)
                - ref[cand[lo:lo + rows]].astype(np.float64))
        out[lo:lo + rows] = np.einsum("qkd,qkd->qk", diff, diff)
    return out


@functools.partial(jax.jit, static_argnames="centre_on_device")
def _merge_chunk(q, chunk, centre, scale, valid, offset, best_d, best_i, ref_norm, *,
                 centre_on_device):
    """Merges the approximate squared distances to one reference chunk into the running top-K'.

    Returns the new (best_d, best_i) and the running maximum of the chunks' squared norms."""
    chunk = chunk.astype(jnp.float32)
    if centre_on_device:
        chunk = (chunk - centre) * scale
    in_chunk = jnp.arange(chunk.shape[0])
    chunk_sq = jnp.where(in_chunk < valid, jnp.sum(chunk * chunk, axis=1), 0.0)
    sq = (jnp.sum(q * q, axis=1, keepdims=True) + chunk_sq[None, :]
          - 2.0 * jnp.matmul(q, chunk.T, precision=jax.lax.Precision.HIGHEST))
    sq = jnp.where(in_chunk[None, :] < valid, jnp.maximum(sq, 0.0), jnp.inf)
    # Top-K' of the chunk, then of the union with the running set (values are what counts: an
    # excluded row is never smaller than the K'-th kept one).
    neg_d, pos = jax.lax.top_k(-sq, min(best_d.shape[1], chunk.shape[0]))
    all_d = jnp.concatenate([best_d, -neg_d], axis=1)
    all_i = jnp.concatenate([best_i, (offset + pos).astype(jnp.int32)], axis=1)
    neg_d, pos = jax.lax.top_k(-all_d, best_d.shape[1])
    return -neg_d, jnp.take_along_axis(all_i, pos, axis=1), jnp.maximum(ref_norm, chunk_sq.max())


def neighbour_grid(samples, reference, indices, padding: int = 2, gap: int = 6) -> np.ndarray:
    """One row per sample: the sample, a `gap`, then its neighbours reference[indices[i]].

    Args:
        samples: [Q, H, W, C] images in [-1, 1] (floats) or uint8.
        reference: [M, H, W, C] images, same convention.
        indices: [Q, k] from `nearest_neighbours`.
        padding: pixels between images (white: 255).

    Returns:
        uint8 image [Q*(H+padding)+padding, (k+1)*(W+padding)+gap+padding, C].
    """
    samples, indices = to_uint8(samples), np.asarray(indices)
    neighbours = to_uint8(np.asarray(reference)[indices.reshape(-1)])
    q, h, w, c = samples.shape
    k = indices.shape[1]
    neighbours = neighbours.reshape(q, k, h, w, c)
    height = q * (h + padding) + padding
    width = (k + 1) * (w + padding) + gap + padding
    grid = np.full((height, width, c), 255, np.uint8)
    for row in range(q):
        top = padding + row * (h + padding)
        grid[top:top + h, padding:padding + w] = samples[row]
        for col in range(k):
            left = padding + (col + 1) * (w + padding) + gap
            grid[top:top + h, left:left + w] = neighbours[row, col]
    return grid
