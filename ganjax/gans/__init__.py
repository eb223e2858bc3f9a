"""Training algorithms, one module each, registered by name and found without a list.

An algorithm subclasses `ganjax.gans.base.Algorithm` (the protocol, with its defaults) and is
registered with `@gans.register("name")`; `names()` imports every module of this package, so a
new algorithm is one file here plus one config, and the registry-wide test
(`tests/test_algorithms.py`) runs one step of it without being told.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from ganjax.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: makes the algorithm available as `config.gan.name = name`."""

    def wrap(cls: type) -> type:
        if _REGISTRY.get(name, cls) is not cls:
            raise ValueError(f"algorithm {name!r} is registered twice.")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return wrap


def unregister(name: str) -> None:
    """Removes a registration (for algorithms defined by tests)."""
    _REGISTRY.pop(name, None)


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def names() -> list[str]:
    """Every registered algorithm."""
    _discover()
    return sorted(_REGISTRY)


def get(name: str) -> type:
    """The algorithm class registered as `name`; a ConfigError naming the choices otherwise."""
    if name not in _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown config.gan.name {name!r}; choose one of {names()}.")
    return _REGISTRY[name]


def create(config: Any, data_info: Any):
    """Builds the algorithm named by `config.gan.name`.

    Constructors check the config against the data; their ValueErrors become ConfigErrors
    (a user-facing one-line error in launch.py).
    """
    cls = get(config.gan.name)
    try:
        return cls(config, data_info)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from e
