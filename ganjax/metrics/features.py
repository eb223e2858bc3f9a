"""Turn any apply function (images -> features) into a batched feature extractor.

Feature spaces used by the metrics: the FID Inception pool3 (`inception_apply_fn`) and any
classifier's penultimate layer, e.g.

    model = SimpleCNN(num_classes=7)
    extract = batched_feature_extractor(
        functools.partial(model.apply, variables, method=SimpleCNN.features), batch_size=256)
    feats = extract(images)                   # np.ndarray [N, D], float32
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np


def batched_feature_extractor(apply_fn: Callable[[jax.Array], jax.Array], batch_size: int = 256,
                              sharding: jax.sharding.Sharding | None = None
                              ) -> Callable[[np.ndarray], np.ndarray]:
    """Wraps `apply_fn` (a batch [B, ...] -> [B, ...] features) for arrays of any length.

    The function is jit-compiled once per image shape: every call sees exactly `batch_size`
    rows (the last partial batch is zero-padded and the padding dropped; a set smaller than
    one batch is one batch of its own size). With `sharding` (e.g.
    ``NamedSharding(mesh, P('data'))``) each batch is placed on it first, so the apply runs
    data-parallel; `batch_size` must then divide evenly across the devices.

    Returns:
        extract(images [N, ...]) -> np.ndarray [N, ...] on the host.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    jitted = jax.jit(apply_fn)

    def extract(images) -> np.ndarray:
        images = np.asarray(images)
        n = images.shape[0]
        if n == 0:
            raise ValueError("batched_feature_extractor: got no images.")
        # Fewer images than a batch: one smaller batch (unless a sharding fixes the size).
        size = batch_size if sharding is not None else min(batch_size, n)
        outputs = []
        for start in range(0, n, size):
            batch = images[start:start + size]
            valid = batch.shape[0]
            if valid < size:
                pad = np.zeros((size - valid,) + batch.shape[1:], batch.dtype)
                batch = np.concatenate([batch, pad])
            batch = jax.device_put(batch, sharding) if sharding is not None else batch
            outputs.append(np.asarray(jitted(batch))[:valid])
        return np.concatenate(outputs)

    return extract
