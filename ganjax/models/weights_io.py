"""Reading PyTorch weights into Flax variables: what the FID-Inception and VGG-16 converters share.

A converter turns a state dict (name -> tensor) into Flax variables once; `.npz` files keep the
result torch-free (keys 'params/<module>/<leaf>'). Every loaded set is checked against the
architecture's own shapes (`jax.eval_shape` of its `init`), so a wrong file is one clear error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from flax import traverse_util


def to_numpy(value) -> np.ndarray:
    """A torch tensor or array-like as a float32 numpy array."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value, np.float32)


def torch_load(path, converter: str) -> Mapping[str, Any]:
    """`torch.load` of a state dict; without torch, an ImportError naming the one-off conversion
    (`python -m <converter> SRC.pth DST.npz`) that makes a torch-free .npz."""
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise ImportError(f"Reading {path} needs torch (CPU build is enough), only once: convert "
                          f"it with `python -m {converter} SRC.pth DST.npz` where torch is "
                          "installed (pip install -e '.[torch]') and use the .npz.") from e
    return torch.load(path, map_location="cpu", weights_only=True)


def save_npz(variables: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Writes Flax variables to an .npz (keys 'params/<module>/.../<leaf>')."""
    flat = traverse_util.flatten_dict(jax.device_get(dict(variables)), sep="/")
    np.savez(path, **{k: np.asarray(v, np.float32) for k, v in flat.items()})


def load_npz(path: str | os.PathLike) -> dict:
    """The Flax variables `save_npz` wrote."""
    with np.load(path) as data:
        flat = {tuple(k.split("/")): data[k] for k in data.files}
    return traverse_util.unflatten_dict(flat)


def check_shapes(variables: Mapping[str, Any], expected: dict, what: str) -> None:
    """ValueError naming the missing, unexpected and wrongly shaped entries of `variables`
    against `expected` ({path tuple: shape}); `what` names the network ("VGG-16")."""
    got = {k: tuple(np.shape(v)) for k, v in traverse_util.flatten_dict(variables).items()}
    missing = sorted("/".join(k) for k in expected.keys() - got.keys())
    extra = sorted("/".join(k) for k in got.keys() - expected.keys())
    wrong = sorted(f"{'/'.join(k)}: {got[k]} != {expected[k]}"
                   for k in expected.keys() & got.keys() if got[k] != expected[k])
    if missing or extra or wrong:
        raise ValueError(f"Not {what} weights: "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} ({len(missing)}), "
                         f"unexpected {extra[:5]} ({len(extra)}), wrong shapes {wrong[:5]} ({len(wrong)}).")


def load(path, *, convert, check, converter: str, what: str) -> dict:
    """Flax variables from a converted .npz (checked with `check`) or a PyTorch .pth / .pt
    state dict (turned into variables by `convert`, which checks them). ValueError for any other
    suffix, naming `what` ("VGG-16") and the converter module that writes the .npz."""
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix == ".npz":
        variables = load_npz(path)
        check(variables)
        return variables
    if suffix in (".pth", ".pt"):
        return convert(torch_load(path, converter))
    raise ValueError(f"Unknown {what} weights format {suffix!r} ({path}); expected a PyTorch .pth "
                     f"or a .npz written by `python -m {converter}`.")
