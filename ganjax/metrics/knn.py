"""k-nearest training images of generated samples: the memorisation / mode check of report 004.

For each query q (a generated sample, in pixel or any feature space) and reference set R (the
training images), find the k indices j minimising the Euclidean distance ||q - r_j||_2. The
search streams R in fixed-size chunks through one jit-compiled step that computes

    ||q - r||^2 = ||q||^2 - 2 q.r + ||r||^2       (one matmul per chunk)

and merges each chunk into a running top-k, so memory is O(Q * (k + chunk_size)) whatever
the size of R. The k winners' distances are then recomputed exactly in float64 (the matmul
form loses precision for near-duplicates, the very case a memorisation check looks for).

`neighbour_grid` lays out each sample followed by its k neighbours as a uint8 picture and
`ganjax.images.save_png` writes it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.images import save_png, to_uint8  # noqa: F401  (save_png re-exported)


class Neighbours(NamedTuple):
    indices: np.ndarray    # [Q, k] int64 rows of the reference set, nearest first
    distances: np.ndarray  # [Q, k] float64 Euclidean distances, ascending


def nearest_neighbours(queries, reference, k: int = 5, chunk_size: int = 4096) -> Neighbours:
    """The k nearest rows of `reference` to each query, by Euclidean distance.

    Args:
        queries: [Q, ...] samples (images are flattened), e.g. generated images.
        reference: [M, ...] with the same trailing shape, e.g. the training images (a host
            array; it is sent to the device one chunk at a time).
        k: neighbours per query (k <= M).
        chunk_size: reference rows per device step; bounds the memory to Q x (k + chunk_size)
            distances.

    Returns:
        `Neighbours(indices, distances)`, nearest first; ties keep the lower index.
    """
    q = np.asarray(queries, np.float32)
    ref = np.asarray(reference)
    if q.shape[1:] != ref.shape[1:]:
        raise ValueError(f"nearest_neighbours: queries {q.shape} and reference {ref.shape} "
                         "must have the same trailing shape.")
    num_ref = ref.shape[0]
    if not 1 <= k <= num_ref:
        raise ValueError(f"nearest_neighbours: k={k} must be in [1, {num_ref}] (reference size).")
    q = q.reshape(q.shape[0], -1)
    ref = ref.reshape(num_ref, -1)
    chunk_size = min(chunk_size, num_ref)
    q_dev = jnp.asarray(q)
    best_d = jnp.full((q.shape[0], k), jnp.inf, jnp.float32)
    best_i = jnp.full((q.shape[0], k), -1, jnp.int32)
    for start in range(0, num_ref, chunk_size):
        chunk = np.asarray(ref[start:start + chunk_size], np.float32)
        valid = chunk.shape[0]
        if valid < chunk_size:
            chunk = np.concatenate([chunk, np.zeros((chunk_size - valid, chunk.shape[1]),
                                                    np.float32)])
        best_d, best_i = _merge_chunk(q_dev, jnp.asarray(chunk), valid, start, best_d, best_i)
    indices = np.asarray(best_i, np.int64)
    # Exact float64 distances of the winners, re-sorted (stable: ties keep the lower index).
    diff = q[:, None, :].astype(np.float64) - ref[indices].astype(np.float64)
    distances = np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))
    order = np.lexsort((indices, distances), axis=-1)
    return Neighbours(np.take_along_axis(indices, order, -1),
                      np.take_along_axis(distances, order, -1))


@jax.jit
def _merge_chunk(q, chunk, valid, offset, best_d, best_i):
    """Merges the squared distances to one reference chunk into the running top-k."""
    sq = (jnp.sum(q * q, axis=1, keepdims=True) + jnp.sum(chunk * chunk, axis=1)[None, :]
          - 2.0 * jnp.matmul(q, chunk.T, precision=jax.lax.Precision.HIGHEST))
    in_chunk = jnp.arange(chunk.shape[0])
    sq = jnp.where(in_chunk[None, :] < valid, jnp.maximum(sq, 0.0), jnp.inf)
    idx = jnp.broadcast_to((offset + in_chunk).astype(jnp.int32), sq.shape)
    all_d = jnp.concatenate([best_d, sq], axis=1)
    all_i = jnp.concatenate([best_i, idx], axis=1)
    neg_d, pos = jax.lax.top_k(-all_d, best_d.shape[1])
    return -neg_d, jnp.take_along_axis(all_i, pos, axis=1)


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
