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

    def with_data_batch_stats(self, images, *args, batch_size: int = 500, rngs=None) -> "NetState":
        """This network with its batch-norm means and variances re-estimated on `images`
        ("precise BN", Wu & Johnson 2021 in docs/references.md); other statistics (spectral
        norm's vectors) and the parameters unchanged. `args` follow the images in `apply_fn`.

        The running averages a GAN's D ends with mix the real and the generated batches it
        normalised; a head that reads real images (InfoGAN's Q) wants the real images' own.
        Each batch of `batch_size` images runs in training mode; Flax's BatchNorm then moves its
        average ra <- m ra + (1 - m) b towards the batch's b, so one pass from ra = 0 and one from
        ra = 1 give (1 - m) b and m + (1 - m) b, whence b for any momentum m. Over the batches:
        mean = E_b[mean_b], var = E_b[var_b + mean_b^2] - mean^2 (whole batches only; the
        remainder is dropped, so at least `batch_size` images are needed).
        """
        if not self.batch_stats:
            return self
        n = (len(images) // batch_size) * batch_size
        if n == 0:
            raise ValueError(f"with_data_batch_stats needs at least batch_size={batch_size} images, got {len(images)}.")

        def is_moment(path) -> bool:
            return getattr(path[-1], "key", None) in ("mean", "var")

        def start(value):
            return jax.tree_util.tree_map_with_path(
                lambda p, x: jnp.full_like(x, value) if is_moment(p) else x, self.batch_stats
            )

        zeros, ones = start(0.0), start(1.0)
        means, squares = None, None
        for i in range(0, n, batch_size):
            b = _train_mode_batch_moments(self, zeros, ones, images[i:i + batch_size], args, rngs)
            m = _moments(b, "mean")
            sq = {k: b_var + m[k] ** 2 for k, b_var in _moments(b, "var").items()}
            means = m if means is None else jax.tree.map(jnp.add, means, m)
            squares = sq if squares is None else jax.tree.map(jnp.add, squares, sq)
        k = n // batch_size
        mean = {p: v / k for p, v in means.items()}
        var = {p: squares[p] / k - mean[p] ** 2 for p in squares}

        def replace(path, x):
            if not is_moment(path):
                return x
            key = jax.tree_util.keystr(path[:-1])
            return (mean if path[-1].key == "mean" else var)[key].astype(x.dtype)

        return self.replace(batch_stats=jax.tree_util.tree_map_with_path(replace, self.batch_stats))


@jax.jit
def _train_mode_batch_moments(net: NetState, from0: PyTree, from1: PyTree, x, args: tuple, rngs) -> PyTree:
    """One batch's own batch-norm moments b, from the averages of two training-mode passes that
    start at 0 and at 1: (1 - m) b and m + (1 - m) b give b = a0 / (1 - (a1 - a0)). A module-level
    jit (the network is an argument, its `apply_fn` static) compiles once per network and shape."""
    _, from0 = net.apply_train(net.params, x, *args, batch_stats=from0, rngs=rngs)
    _, from1 = net.apply_train(net.params, x, *args, batch_stats=from1, rngs=rngs)
    return jax.tree.map(lambda a, b: a / (1.0 - (b - a)), from0, from1)


def _moments(stats: PyTree, name: str) -> dict[str, jax.Array]:
    """The leaves `name` ("mean" or "var") of a batch_stats tree, keyed by their module's path."""
    flat = jax.tree_util.tree_flatten_with_path(stats)[0]
    return {jax.tree_util.keystr(p[:-1]): v for p, v in flat if getattr(p[-1], "key", None) == name}


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
