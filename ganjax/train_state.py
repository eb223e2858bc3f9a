"""The explicit state of a run: one pytree per run, typed per algorithm.

A run's state is a single pytree: jit takes it in and gives it back, orbax saves and restores it
whole, and nothing about training lives outside it (no Python-side counter a resume would lose).
`RunState` holds the step and the base RNG key (randomness of step s is `fold_in(rng, s)`, so a
resumed run draws exactly what the uninterrupted one would); each algorithm's state subclasses
it with typed fields: one `NetState` per network, plus arrays such as BEGAN's `k_t` or
CycleGAN's image pools. The loop and the checkpointer need only `.step` and `.networks()`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from flax import struct

PyTree = Any


@struct.dataclass
class NetState:
    """One network: parameters, batch statistics (batch norm means/vars, spectral-norm power
    iteration vectors; `{}` when there are none) and its optimizer state.

    `apply_fn` and `tx` are static (not leaves): they come from the config, not the checkpoint.
    """

    params: PyTree
    batch_stats: PyTree
    opt_state: PyTree
    apply_fn: Callable[..., Any] = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @classmethod
    def create(
        cls,
        apply_fn: Callable[..., Any],
        variables: PyTree,
        tx: optax.GradientTransformation,
    ) -> "NetState":
        """Builds a sub-state from a Flax `init` result `{'params': ..., 'batch_stats': ...}`."""
        variables = flax.core.unfreeze(variables)
        params = variables.pop("params")
        batch_stats = variables.pop("batch_stats", {})
        if variables:
            raise ValueError(f"Unexpected variable collections {sorted(variables)}.")
        return cls(
            params=params,
            batch_stats=batch_stats,
            opt_state=tx.init(params),
            apply_fn=apply_fn,
            tx=tx,
        )

    @property
    def variables(self) -> dict[str, PyTree]:
        """The Flax variables dict for `apply_fn`."""
        if self.batch_stats:
            return {"params": self.params, "batch_stats": self.batch_stats}
        return {"params": self.params}

    def apply_train(
        self, params: PyTree, *args, batch_stats: PyTree | None = None, rngs=None, **kwargs
    ) -> tuple[Any, PyTree]:
        """`apply_fn(..., train=True)` with `params` (and `batch_stats`, default the state's):
        returns (outputs, new batch statistics). For modules that take a `train` flag."""
        stats = self.batch_stats if batch_stats is None else batch_stats
        variables = {"params": params}
        if stats:
            variables["batch_stats"] = stats
        out, updates = self.apply_fn(
            variables, *args, train=True, mutable=["batch_stats"], rngs=rngs, **kwargs
        )
        return out, updates.get("batch_stats", stats)

    def apply_gradients(self, grads: PyTree, batch_stats: PyTree | None = None) -> "NetState":
        """One optimizer update; optionally replaces the batch statistics."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(
            params=optax.apply_updates(self.params, updates),
            opt_state=opt_state,
            batch_stats=self.batch_stats if batch_stats is None else batch_stats,
        )

    @property
    def num_params(self) -> int:
        return sum(x.size for x in jax.tree.leaves(self.params))


@struct.dataclass
class RunState:
    """What every run's state has: the step and the base key.

    Attributes:
      step: number of completed train steps (int32 scalar).
      rng: base PRNG key (raw uint32 key data, so that orbax stores it as a plain array).
    """

    step: jax.Array
    rng: jax.Array

    def step_key(self, name: str | None = None) -> jax.Array:
        """The key of the current step (and, if `name` is given, of one use within it)."""
        key = jax.random.fold_in(self.rng, self.step)
        if name is not None:
            key = jax.random.fold_in(key, _stable_hash(name))
        return key

    def networks(self) -> dict[str, NetState]:
        """Every network of the state by field name (for parameter counts and reports)."""
        return {
            f.name: value
            for f in dataclasses.fields(self)
            if isinstance(value := getattr(self, f.name), NetState)
        }


@struct.dataclass
class GANState(RunState):
    """Two adversaries, and the slots of the algorithms built on them.

    Attributes:
      generator, discriminator: the two players (the discriminator slot also holds a critic,
        ACGAN's D with its classifier head, InfoGAN's D with its Q head, or BEGAN's autoencoder).
      predictor: a separate image -> latent network trained against the generator (the
        predictor of report 000), when used; never InfoGAN's Q head, which shares D's trunk.
      k_t: BEGAN's equilibrium control variable, when used.
    """

    generator: NetState
    discriminator: NetState
    predictor: NetState | None = None
    k_t: jax.Array | None = None


def _stable_hash(name: str) -> int:
    """A deterministic 31-bit hash of a string (Python's `hash` is salted per process)."""
    h = 0
    for ch in name.encode():
        h = (h * 131 + ch) % (2**31 - 1)
    return h


def init_step_and_rng(seed: int) -> tuple[jax.Array, jax.Array]:
    """Step 0 and the base key for `seed`."""
    return jnp.zeros((), jnp.int32), jax.random.PRNGKey(seed)
