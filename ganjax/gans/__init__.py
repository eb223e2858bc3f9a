"""Training algorithms, one file each, registered by name (DESIGN rule 5).

An algorithm is a class built from `(config, data_info)` with

* `init_state(rng) -> GANState`,
* `train_step(state, batch) -> (state, metrics)`: pure; the loop jit-compiles it over the mesh,
* `generate(state, inputs) -> images` and `sample_inputs(key, cols) -> (inputs, rows)` for
  sample grids and exports (`rows` = number of grid rows, e.g. one per class),
* `n_micro`: how many real batches one train step consumes (e.g. WGAN's critic steps).

Optional hooks for algorithms whose input is not one labelled dataset (e.g. CycleGAN's two
domains): a static `data_info(config) -> DataInfo` used instead of `pipeline.load_split`, and
`train_batches(mesh, start_step) -> iterator` used instead of `pipeline.build_train_data`.

A new GAN is one module here with `@register("name")` plus one config.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

_REGISTRY: dict[str, type] = {}
_MODULES = ("ganjax.gans.dcgan", "ganjax.gans.cyclegan")


def register(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"GAN {name!r} is registered twice.")
        _REGISTRY[name] = cls
        return cls

    return wrap


def names() -> list[str]:
    for module in _MODULES:
        importlib.import_module(module)
    return sorted(_REGISTRY)


def get(name: str) -> type:
    if name not in names():
        raise ValueError(f"Unknown config.gan.name {name!r}; choose one of {names()}.")
    return _REGISTRY[name]


def create(config: Any, data_info: Any):
    """Builds the algorithm named by `config.gan.name`.

    Constructors check the config against the data; their ValueErrors become ConfigErrors
    (a user-facing one-line error in launch.py).
    """
    from ganjax.config import ConfigError

    try:
        return get(config.gan.name)(config, data_info)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from e
