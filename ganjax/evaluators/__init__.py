"""Evaluators run during training, configured by name (big_vision's `config.evals` pattern).

A config lists them as entries of `config.evals`:

    c.evals.label_accuracy = evaluators.entry("label_accuracy", every=500, num_samples=1000)

`type` names a module `ganjax/evaluators/<type>.py` whose `Evaluator` class subclasses
`Evaluator` below; `every` is the cadence (the entry also runs at the last step; 0 = only
then); the other keys are the evaluator's own, with defaults from its `default_config()`. The
loop knows none of them: it calls `run(state, step)` when `due(step)` and writes what it yields
(`(key, scalar)` as `eval/<key>`, `(key, uint8 image [H, W, C])` as a PNG and a TensorBoard
image). An evaluator that needs something the algorithm cannot give (conditional sampling from
a CycleGAN) is a one-line ConfigError before training starts.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from typing import Any, ClassVar, Iterator

import jax
import ml_collections
import numpy as np

from ganjax.errors import ConfigError


class Evaluator:
    """Base class: `check(algorithm)`, `__init__`, `run(state, step)`; see the module docstring."""

    TINY: ClassVar[dict[str, Any]] = {}  # values of the tiny variant (keys of the entry)

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        """The evaluator's own keys and their defaults (besides `type` and `every`)."""
        return ml_collections.ConfigDict()

    @classmethod
    def check(cls, name: str, algorithm) -> None:
        """Raises ConfigError if `algorithm` cannot give what this evaluator needs."""

    def __init__(self, name: str, entry: ml_collections.ConfigDict, config, algorithm, workdir: str):
        """Cheap: anything slow (a judge to train, real images to load) waits for `run`.
        `workdir` is the run's directory; evaluators cache what they fit under it."""
        self.name, self.entry, self.config, self.algorithm = name, entry, config, algorithm
        self.workdir = workdir

    @functools.cached_property
    def _generate(self):
        """The algorithm's `generate(state, parts)`, jit-compiled once per evaluator."""
        return jax.jit(self.algorithm.generate)

    def run(self, state, step: int) -> Iterator[tuple[str, Any]]:
        raise NotImplementedError


def require_latent(name: str, type_name: str, algorithm) -> None:
    """ConfigError unless `algorithm` samples from a latent (every evaluator of samples)."""
    if algorithm.latent is None:
        raise ConfigError(
            f"config.evals.{name} ({type_name}) needs a generator that samples from a latent; "
            f"gan.name={algorithm.name!r} has none."
        )


def generate_in_batches(generate, state, parts: dict, batch_size: int = 500) -> np.ndarray:
    """`generate(state, parts)` (jitted) over slices of `parts` -> host images [N, ...]."""
    n = jax.tree.leaves(parts)[0].shape[0]
    out = []
    for start in range(0, n, batch_size):
        chunk = jax.tree.map(lambda x: x[start:start + batch_size], parts)
        out.append(np.asarray(jax.device_get(generate(state, chunk))))
    return np.concatenate(out)


class JudgedEvaluator(Evaluator):
    """An evaluator that reads generated images with an independent judge (`ganjax.judges`: a
    CNN trained on the real training split, fitted at the first run and cached in
    `workdir/judges/`). Its entry has `judge_steps`; `judge_target` is "label" or "attributes"."""

    judge_target: ClassVar[str] = "label"

    def __init__(self, name, entry, config, algorithm, workdir):
        super().__init__(name, entry, config, algorithm, workdir)
        self._judge = None

    @property
    def judge(self):
        from ganjax import judges

        if self._judge is None:
            self._judge = judges.load_or_train(
                os.path.join(self.workdir, "judges"), self.config.data, self.judge_target,
                seed=self.config.seed, steps=self.entry.judge_steps,
            )
        return self._judge

    def sample_key(self, step: int) -> jax.Array:
        """The same samples at a step whenever the evaluator runs (a resumed run included)."""
        return jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 2), step)


def names() -> list[str]:
    """Every evaluator type."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__))


def get(type_name: str) -> type[Evaluator]:
    """The `Evaluator` class of `type_name`; a ConfigError naming the choices otherwise."""
    if type_name not in names():
        raise ConfigError(f"unknown evaluator type {type_name!r}; choose one of {names()}.")
    return importlib.import_module(f"{__name__}.{type_name}").Evaluator


def entry(type_name: str, every: int = 0, **overrides) -> ml_collections.ConfigDict:
    """A `config.evals.<name>` entry: every key of the type with its default, then `overrides`."""
    c = ml_collections.ConfigDict({"type": type_name, "every": every})
    c.update(get(type_name).default_config())
    for key, value in overrides.items():
        if key not in c:
            raise ConfigError(f"evaluator type {type_name!r} has no key {key!r}; it has {sorted(c)}.")
        c[key] = value
    return c


def check_config(evals: ml_collections.ConfigDict) -> None:
    """Every entry names a known type, has `every` >= 0 and only that type's keys."""
    for name, e in evals.items():
        if not isinstance(e, (dict, ml_collections.ConfigDict)) or "type" not in e:
            raise ConfigError(
                f"config.evals.{name} must be an entry made with evaluators.entry(type, every=...)."
            )
        allowed = set(entry(e["type"]))
        unknown = sorted(set(e) - allowed)
        if unknown:
            raise ConfigError(f"config.evals.{name} has unknown keys {unknown}; {e['type']!r} takes {sorted(allowed)}.")
        if e.get("every", 0) < 0:
            raise ConfigError(f"config.evals.{name}.every must be >= 0 (0 = only at the end).")


class Scheduled:
    """One configured evaluator and its cadence."""

    def __init__(self, name: str, evaluator: Evaluator, every: int):
        self.name, self.evaluator, self.every = name, evaluator, every

    def due(self, step: int, last: bool) -> bool:
        return last or bool(self.every and step % self.every == 0)


def from_config(config, algorithm, workdir: str) -> list[Scheduled]:
    """Checks every entry against the algorithm (all before building any), then builds them."""
    evals = config.get("evals") or {}
    check_config(evals)
    for name, e in evals.items():
        get(e.type).check(name, algorithm)
    return [
        Scheduled(name, get(e.type)(name, e, config, algorithm, workdir), e.every)
        for name, e in evals.items()
    ]
