"""Device mesh and batch placement: jit over a mesh, the batch sharded on a data axis, the state replicated.

Training runs `jax.jit` over a one-axis `jax.sharding.Mesh` named "data": batches are sharded
over it on their batch dimension, the state is replicated. The same code runs on one CPU, a
multi-GPU host, or a multi-host TPU slice (`initialize_distributed` first). The mesh uses
`AxisType.Auto` (the `jax.sharding.Mesh` default): XLA propagates the shardings, and batch norm
statistics inside the step cover the global batch without any `pmean`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ganjax.errors import ConfigError

DATA_AXIS = "data"
DISTRIBUTED_ENV = "GANJAX_DISTRIBUTED"


def initialize_distributed(enabled: bool | None = None) -> None:
    """Opt-in multi-host set-up: `jax.distributed.initialize()` (cluster auto-detection).

    Enabled by `enabled=True` or the environment variable GANJAX_DISTRIBUTED=1. Must run before
    any other JAX call.
    """
    if enabled is None:
        enabled = os.environ.get(DISTRIBUTED_ENV, "0") not in ("", "0", "false", "False")
    if enabled:
        jax.distributed.initialize()


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D mesh over the first `num_devices` devices (0: all of them)."""
    devices = jax.devices()
    if num_devices:
        if num_devices > len(devices):
            raise ConfigError(
                f"config.mesh.num_devices={num_devices} but only {len(devices)} devices are "
                "visible; set it to 0 (all) or at most the visible count."
            )
        devices = devices[:num_devices]
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Shards dimension `batch_axis` over the data axis, replicates the others."""
    return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
    """A global batch must split evenly over the devices and the processes."""
    n = mesh.devices.size
    if global_batch % n:
        raise ConfigError(
            f"batch size {global_batch} does not divide over {n} devices; set "
            f"config.data.batch_size to a multiple of {n}."
        )
    if global_batch % jax.process_count():
        raise ConfigError(
            f"batch size {global_batch} does not divide over {jax.process_count()} processes."
        )


def put_global_batch(local_batch: Any, mesh: Mesh, batch_axis: int = 0) -> Any:
    """Per-process numpy batch -> global `jax.Array`s sharded over the data axis.

    Each process passes its own slice; `make_array_from_process_local_data` assembles the global
    array (on one process this is a plain sharded `device_put`).
    """
    sharding = batch_sharding(mesh, batch_axis)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places a pytree (e.g. the initial state) replicated on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))
