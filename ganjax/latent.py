"""What a generator takes as input: one description shared by every part that builds or reads it.

A generator's input has two parts:

* the **latent vector** `[N, dim]`: noise z (N(0, I) or U(-1, 1)), then one one-hot block per
  categorical code (InfoGAN's c_cat ~ Cat(K), uniform), then the continuous codes
  (c_cont ~ U(-1, 1), the prior of Chen et al. 2016; drawing them from a normal is a known slip);
* the **condition** the generator is told: a class label `[N]` (cGAN, ACGAN) or an attribute
  vector `[N, A]` in {0, 1} (ACGAN on CelebA's 40 attributes).

`LatentSpec.sample` draws the parts as a dict (`z`, `cat`, `cont`, `label`, `attributes`: only
the parts the spec has), `vector` flattens them to the generator's vector, `split` cuts a
vector (a predictor's or a Q head's output) back into parts, and `grid` / `traversal` lay out
the sample grids: one row per class or category, or a continuous code swept along each row.
Training steps, sample grids, evaluators, export and latent recovery all read this one spec.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array
Parts = dict  # {"z": [N, noise], "cat": [N, n_cat] int32, "cont": [N, n_cont], "label": [N] int32,
#               "attributes": [N, A] float32}: the parts a spec has

_NOISE_PRIORS = ("normal", "uniform")
# Each part other than z draws from fold_in(key, salt): adding a part never changes the others.
_SALT = {"cat": 1, "cont": 2, "label": 3, "attributes": 4}


@dataclasses.dataclass(frozen=True)
class LatentSpec:
    """The layout and priors of a generator's input.

    Attributes:
      noise: size of the noise vector z.
      noise_prior: "normal" (z ~ N(0, I)) or "uniform" (z ~ U(-1, 1)).
      categorical: the sizes K of the categorical codes, each one-hot in the vector (e.g. (10,)).
      continuous: number of continuous codes, each ~ U(-1, 1).
      num_classes: > 0 when the generator is told a class label.
      num_attributes: > 0 when the generator is told a binary attribute vector.
      attribute_prob: P(attribute = 1) when attributes are drawn rather than given.
    """

    noise: int = 100
    noise_prior: str = "normal"
    categorical: tuple[int, ...] = ()
    continuous: int = 0
    num_classes: int = 0
    num_attributes: int = 0
    attribute_prob: float = 0.5

    def __post_init__(self):
        if self.noise_prior not in _NOISE_PRIORS:
            raise ValueError(f"noise prior must be one of {list(_NOISE_PRIORS)}, got {self.noise_prior!r}.")
        if self.noise < 0 or self.continuous < 0 or any(k < 2 for k in self.categorical):
            raise ValueError(
                f"latent sizes must be >= 0 and categorical codes need >= 2 values: {self}."
            )
        if self.num_classes and self.num_attributes:
            raise ValueError("a generator is told a class label or an attribute vector, not both.")
        object.__setattr__(self, "categorical", tuple(int(k) for k in self.categorical))

    # ---------------------------------------------------------------------------------------
    # Layout.
    # ---------------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Size of the latent vector: noise + sum(categorical) + continuous."""
        return self.noise + sum(self.categorical) + self.continuous

    @property
    def conditional(self) -> bool:
        """True when the generator is told a label or an attribute vector."""
        return bool(self.num_classes or self.num_attributes)

    def vector(self, parts: Parts) -> Array:
        """[z, one_hot(cat_1), ..., one_hot(cat_k), cont] -> [N, dim] (z itself if that is all)."""
        pieces = [parts["z"]] if self.noise else []
        for i, k in enumerate(self.categorical):
            pieces.append(jax.nn.one_hot(parts["cat"][:, i], k, dtype=jnp.float32))
        if self.continuous:
            pieces.append(parts["cont"])
        return pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces, axis=-1)

    def split(self, vector: Array) -> Parts:
        """The inverse of `vector` for a network's output [N, dim].

        Returns `z`, `cat_logits` (a tuple of [N, K] slices, one per categorical code), `cat`
        (their argmax, [N, n_cat]) and `cont`: only those the spec has.
        """
        if vector.shape[-1] != self.dim:
            raise ValueError(f"a latent vector of this spec has {self.dim} entries, got {vector.shape[-1]}.")
        out, start = {}, 0
        if self.noise:
            out["z"], start = vector[..., : self.noise], self.noise
        if self.categorical:
            logits = []
            for k in self.categorical:
                logits.append(vector[..., start : start + k])
                start += k
            out["cat_logits"] = tuple(logits)
            out["cat"] = jnp.stack([jnp.argmax(l, axis=-1) for l in logits], axis=-1).astype(jnp.int32)
        if self.continuous:
            out["cont"] = vector[..., start : start + self.continuous]
        return out

    def map_categorical(self, vector: Array, fn) -> Array:
        """Vectors [N, dim] with each categorical block b (of K entries) replaced by fn(b, K):
        e.g. logits -> softmax (a predictor's relaxed output), or -> one-hot of the argmax;
        z and the continuous codes unchanged."""
        if not self.categorical:
            return vector
        parts = self.split(vector)
        pieces = [parts["z"]] if self.noise else []
        pieces += [fn(block, k) for block, k in zip(parts["cat_logits"], self.categorical)]
        if self.continuous:
            pieces.append(parts["cont"])
        return jnp.concatenate(pieces, axis=-1)

    def condition_parts(self, batch: dict) -> Parts:
        """The parts a real batch fixes: its `label` and / or `attributes`, those the spec has
        (e.g. `sample(key, n, **spec.condition_parts(batch))` draws the rest)."""
        fixed = {}
        if self.num_classes:
            fixed["label"] = batch["label"]
        if self.num_attributes:
            fixed["attributes"] = batch["attributes"]
        return fixed

    @staticmethod
    def condition(parts: Parts) -> Array | None:
        """What the generator is told besides the vector: the label, the attributes, or None."""
        if "label" in parts:
            return parts["label"]
        return parts.get("attributes")

    # ---------------------------------------------------------------------------------------
    # Sampling.
    # ---------------------------------------------------------------------------------------

    def sample(self, key: Array, n: int, **fixed: Array) -> Parts:
        """Draws every part of n inputs from its prior; `fixed` parts (e.g. `label=`) are kept.

        z comes from `key` itself, each other part from `fold_in(key, salt)`, so a spec with
        only noise draws exactly `jax.random.normal(key, (n, noise))`.
        """
        unknown = set(fixed) - {"z", "cat", "cont", "label", "attributes"}
        if unknown:
            raise ValueError(f"unknown latent parts {sorted(unknown)}.")
        sub = lambda name: jax.random.fold_in(key, _SALT[name])
        parts: Parts = {}
        if self.noise:
            if "z" in fixed:
                parts["z"] = jnp.asarray(fixed["z"], jnp.float32)
            elif self.noise_prior == "normal":
                parts["z"] = jax.random.normal(key, (n, self.noise), jnp.float32)
            else:
                parts["z"] = jax.random.uniform(key, (n, self.noise), jnp.float32, -1.0, 1.0)
        if self.categorical:
            if "cat" in fixed:
                parts["cat"] = jnp.asarray(fixed["cat"], jnp.int32).reshape(n, len(self.categorical))
            else:
                keys = jax.random.split(sub("cat"), len(self.categorical))
                parts["cat"] = jnp.stack(
                    [jax.random.randint(k, (n,), 0, c) for k, c in zip(keys, self.categorical)], axis=-1
                ).astype(jnp.int32)
        if self.continuous:
            parts["cont"] = (
                jnp.asarray(fixed["cont"], jnp.float32) if "cont" in fixed
                else jax.random.uniform(sub("cont"), (n, self.continuous), jnp.float32, -1.0, 1.0)
            )
        if self.num_classes:
            parts["label"] = (
                jnp.asarray(fixed["label"]).astype(jnp.int32) if "label" in fixed
                else jax.random.randint(sub("label"), (n,), 0, self.num_classes).astype(jnp.int32)
            )
        if self.num_attributes:
            parts["attributes"] = (
                jnp.asarray(fixed["attributes"], jnp.float32) if "attributes" in fixed
                else jax.random.bernoulli(sub("attributes"), self.attribute_prob,
                                          (n, self.num_attributes)).astype(jnp.float32)
            )
        return parts

    def grid(self, key: Array, cols: int) -> tuple[Parts, int]:
        """Inputs of a sample grid, row-major, and its number of rows.

        One row per class (conditional on labels), else one row per value of the first
        categorical code, else `cols` rows of independent draws; columns differ in the rest.
        """
        if self.num_classes:
            rows = self.num_classes
            return self.sample(key, rows * cols, label=jnp.repeat(jnp.arange(rows), cols)), rows
        if self.categorical:
            rows = self.categorical[0]
            parts = self.sample(key, rows * cols)
            parts["cat"] = parts["cat"].at[:, 0].set(jnp.repeat(jnp.arange(rows), cols))
            return parts, rows
        return self.sample(key, cols * cols), cols

    def traversal(
        self, key: Array, rows: int, values: Sequence[float] | Array, code: int = 0, kind: str = "cont"
    ) -> tuple[Parts, int]:
        """Rows of fixed random inputs; along each row one code takes `values` in turn.

        `kind="cont"`: continuous code `code` takes each value (e.g. linspace(-2, 2, 8) to look
        past the prior's range); `kind="cat"`: categorical code `code` takes each integer value.
        """
        values = jnp.asarray(values)
        cols = values.shape[0]
        base = self.sample(key, rows)
        parts = jax.tree.map(lambda x: jnp.repeat(x, cols, axis=0), base)
        tiled = jnp.tile(values, rows)
        if kind == "cont":
            if not code < self.continuous:
                raise ValueError(f"continuous code {code} does not exist ({self.continuous} codes).")
            parts["cont"] = parts["cont"].at[:, code].set(tiled.astype(jnp.float32))
        elif kind == "cat":
            if not code < len(self.categorical):
                raise ValueError(f"categorical code {code} does not exist ({len(self.categorical)} codes).")
            parts["cat"] = parts["cat"].at[:, code].set(tiled.astype(jnp.int32))
        else:
            raise ValueError(f"kind must be 'cont' or 'cat', got {kind!r}.")
        return parts, rows
