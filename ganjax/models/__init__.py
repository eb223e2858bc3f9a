"""Network architectures, chosen by `config.model.arch` apart from the training algorithm.

An architecture is a module `ganjax/models/<arch>.py` (big_vision's models-by-path) with

* `default_config() -> ConfigDict`: its keys of `config.model` (with `arch` and `conv_impl`);
* `TINY`: its values for the `tiny` variant (flattened keys);
* `build_pair(model_config, image_shape, latent, d_heads, d_conditional) -> (G, D)`: Flax
  modules; G maps `(latent vector, condition)` to images in [-1, 1], D maps `(images,
  condition)` to a dict of named heads: `score` plus one output of size n for each
  `(name, n)` in `d_heads` (ACGAN's `aux` classifier, InfoGAN's `q`).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ganjax.errors import ConfigError

_NOT_ARCHITECTURES = ("layers", "winograd", "classifier", "vgg")


def names() -> list[str]:
    """Every architecture module (one with `build_pair`)."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_ARCHITECTURES and hasattr(get_module(module.name), "build_pair"):
            found.append(module.name)
    return sorted(found)


def get_module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def get(name: str) -> ModuleType:
    """The architecture module `name`; a ConfigError naming the choices otherwise."""
    try:
        module = get_module(name)
    except ModuleNotFoundError:
        module = None
    if module is None or not hasattr(module, "build_pair"):
        raise ConfigError(f"unknown config.model.arch {name!r}; choose one of {names()}.")
    return module
