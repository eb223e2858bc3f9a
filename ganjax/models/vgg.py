"""VGG-16's convolutional layers in Flax (a feature space for perceptual distances), and the
converter for torchvision's `vgg16` weights.

Report 000 (Sec. 7.3) compares images in the features of "the first 23 layers" of VGG-16's
feature extractor: torchvision's `vgg16().features[:23]`, i.e. up to conv4_3 and its ReLU
(Simonyan & Zisserman 2014; the feature distance of Johnson et al. 2016). `VGG16Features`
returns the ReLU output of any of the 13 convolutions, named by block and position:

    conv1_1 conv1_2 | pool | conv2_1 conv2_2 | pool | conv3_1 conv3_2 conv3_3 | pool |
    conv4_1 conv4_2 conv4_3 | pool | conv5_1 conv5_2 conv5_3

(3x3 convolutions with padding 1; 2x2 max pools, stride 2, rounding down as PyTorch's
`MaxPool2d`); only the layers up to the deepest requested one are built and run. Inputs are
ganjax images [N, H, W, 1 or 3] in [-1, 1]: mapped to [0, 1], normalised with ImageNet's mean
(0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) as torchvision's `VGG16_Weights`
transforms do; gray images are repeated to 3 channels. Images are used at their own size by
default (no interpolation, and the cost of a 28 px or 64 px image; 28 px digits reach conv4_3
as 3x3 maps); `resize=S` resizes them bilinearly to SxS first (e.g. 224, the size the weights
were trained at, nearer the statistics the filters were learnt on, at a cost growing as S^2).

Weights are never downloaded. Get torchvision's `VGG16_Weights.IMAGENET1K_V1` file once from

    https://download.pytorch.org/models/vgg16-397923af.pth

and point the config key `eval.vgg16_weights` at it; or convert it once (needs torch)

    python -m ganjax.models.vgg vgg16-397923af.pth vgg16_features.npz

and point the key at the .npz (13 convolutions, 59 MB, loads with numpy only). A missing file is a
one-line `VGGWeightsNotFoundError` (a ConfigError) naming both. tests/test_vgg.py proves the
conversion against torchvision's own `vgg16` module.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from ganjax.errors import ConfigError
from ganjax.models import weights_io

WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
CONFIG_KEY = "eval.vgg16_weights"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (channels, convolutions) of VGG-16's five blocks (configuration "D").
_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def _layer_table() -> dict[str, tuple[int, int, int]]:
    """name -> (index in torchvision's `features`, block (0-based), channels)."""
    table, index = {}, 0
    for block, (channels, convs) in enumerate(_BLOCKS):
        for k in range(convs):
            table[f"conv{block + 1}_{k + 1}"] = (index, block, channels)
            index += 2  # the convolution, then its ReLU
        index += 1  # the max pool
    return table


_LAYERS = _layer_table()
LAYERS: tuple[str, ...] = tuple(_LAYERS)  # conv1_1 ... conv5_3
TORCH_INDEX = {name: index for name, (index, _, _) in _LAYERS.items()}  # features.N of conv


class VGGWeightsNotFoundError(ConfigError):
    """The VGG-16 weights file is missing; the one-line message says where to get it."""


def check_layers(layers: Sequence[str], what: str = "config.eval.vgg16_layers") -> tuple[str, ...]:
    """The layer names as a tuple; a ConfigError naming the choices if one is unknown or none given."""
    layers = tuple(layers)
    unknown = [name for name in layers if name not in _LAYERS]
    if unknown or not layers:
        raise ConfigError(f"{what}: unknown or no VGG-16 layers {unknown or list(layers)}; choose "
                          f"from {list(LAYERS)} (comma-separated).")
    return layers


def num_pools(layers: Sequence[str]) -> int:
    """Max pools before the deepest of `layers` (conv4_3: 3): images need >= 2**that pixels."""
    return max(_LAYERS[name][1] for name in layers)


class VGG16Features(nn.Module):
    """VGG-16 up to the deepest of `layers`: images [N, H, W, 1 or 3] in [-1, 1] -> a list of
    the ReLU outputs of `layers` (in the order given), each [N, h, w, channels].

    `resize`: 0 keeps the images' size; S > 0 resizes them bilinearly to SxS first.
    `precision`: matmul precision of the convolutions (None: the backend's default, fast).
    """
    layers: tuple[str, ...] = ("conv4_3",)
    resize: int = 0
    precision: Any = None

    @nn.compact
    def __call__(self, images):
        x = jnp.asarray(images)
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"VGG16Features needs images [N, H, W, 1 or 3], got {x.shape}.")
        layers = check_layers(self.layers, "VGG16Features.layers")
        if x.shape[-1] == 1:
            x = jnp.repeat(x, 3, axis=-1)
        if self.resize:
            x = jax.image.resize(x, (x.shape[0], self.resize, self.resize, 3), "bilinear")
        if min(x.shape[1:3]) < 2 ** num_pools(layers):
            raise ValueError(f"VGG16Features: {x.shape[1]}x{x.shape[2]} images are too small for "
                             f"{max(layers, key=LAYERS.index)} (needs >= {2 ** num_pools(layers)} "
                             "px); resize them up or choose an earlier layer.")
        x = ((x + 1.0) / 2.0 - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
        wanted, outputs = set(layers), {}
        last = max(LAYERS.index(name) for name in layers)
        block = 0
        for name in LAYERS[: last + 1]:
            _, name_block, channels = _LAYERS[name]
            if name_block != block:
                x = nn.max_pool(x, (2, 2), (2, 2))
                block = name_block
            x = nn.Conv(channels, (3, 3), padding=((1, 1), (1, 1)), precision=self.precision,
                        name=name)(x)
            x = nn.relu(x)
            if name in wanted:
                outputs[name] = x
        return [outputs[name] for name in layers]


def feature_fn(variables: Mapping[str, Any], layers: Sequence[str] = ("conv4_3",),
               resize: int = 0, precision=None) -> Callable[[jax.Array], list]:
    """A pure function images -> [features of each layer], closed over `variables` (all 13
    convolutions, as `load_variables` returns them; those past the deepest layer are left out).
    Jit-, grad- and scan-friendly: the weights are constants of the function."""
    layers = check_layers(layers, "feature_fn layers")
    model = VGG16Features(layers, resize, precision)
    needed = LAYERS[: max(LAYERS.index(name) for name in layers) + 1]
    params = {name: jax.tree.map(jnp.asarray, dict(variables["params"][name])) for name in needed}
    return functools.partial(model.apply, {"params": params})


# --------------------------------------------------------------------------------------------
# Weights: torchvision state_dict <-> Flax variables, .npz cache, loading with clear errors.
# --------------------------------------------------------------------------------------------
def convert_state_dict(state_dict: Mapping[str, Any]) -> dict:
    """torchvision `vgg16` state_dict (name -> tensor/array) -> Flax variables of the 13 convs.

    `features.N.weight` [out, in, 3, 3] becomes params/<conv name>/kernel [3, 3, in, out] and
    `features.N.bias` params/<conv name>/bias (`TORCH_INDEX` maps names to N). The classifier
    (`classifier.*`) is dropped. The result is checked (every convolution, its shapes).
    """
    by_index = {index: name for name, index in TORCH_INDEX.items()}
    flat = {}
    for key, value in state_dict.items():
        if key.startswith("classifier."):
            continue
        parts = key.split(".")
        index = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1
        if parts[0] != "features" or index not in by_index or parts[2] not in ("weight", "bias"):
            raise ValueError(f"convert_state_dict: unexpected entry {key!r}: not a torchvision "
                             "vgg16 state_dict (features.N.weight/bias, classifier.*).")
        array = weights_io.to_numpy(value)
        if parts[2] == "weight":
            flat[("params", by_index[index], "kernel")] = array.transpose(2, 3, 1, 0)
        else:
            flat[("params", by_index[index], "bias")] = array
    variables = traverse_util.unflatten_dict(flat)
    _check_variables(variables)
    return variables


def save_variables(variables: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Writes Flax variables to an .npz (keys 'params/conv1_1/kernel', ...)."""
    weights_io.save_npz(variables, path)


def load_variables(path: str | os.PathLike | None) -> dict:
    """Loads VGG-16 weights from a converted .npz, or torchvision's .pth (needs torch).

    Raises:
        VGGWeightsNotFoundError: `path` is unset or not a file (one line: the download URL,
            the config key and the converter command).
        ValueError: unknown suffix, or names/shapes that are not VGG-16's 13 convolutions.
    """
    if not path or not os.path.isfile(path):
        raise VGGWeightsNotFoundError(
            f"VGG-16 weights not found at {str(path)!r} (config.{CONFIG_KEY}); nothing is "
            f"downloaded: get torchvision's VGG16_Weights.IMAGENET1K_V1 file {WEIGHTS_URL} "
            f"(528 MB) and set --config.{CONFIG_KEY}=/path/to/vgg16-397923af.pth, or convert it "
            f"once to a torch-free .npz: python -m ganjax.models.vgg SRC.pth DST.npz.")
    return weights_io.load(path, convert=convert_state_dict, check=_check_variables,
                           converter="ganjax.models.vgg", what="VGG-16")


def convert_pth_to_npz(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """One-off conversion of torchvision's vgg16 .pth (needs torch) into a torch-free .npz."""
    save_variables(load_variables(src), dst)


def _expected_shapes() -> dict:
    shapes = {}
    for name, (_, block, channels) in _LAYERS.items():
        previous = 3 if name == "conv1_1" else _BLOCKS[block - 1][0] if name.endswith("_1") else channels
        shapes[("params", name, "kernel")] = (3, 3, previous, channels)
        shapes[("params", name, "bias")] = (channels,)
    return shapes


def _check_variables(variables: Mapping[str, Any]) -> None:
    weights_io.check_shapes(variables, _expected_shapes(), "VGG-16")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert torchvision's VGG-16 weights (.pth) to a torch-free .npz.")
    parser.add_argument("src", help=f"vgg16-397923af.pth (from {WEIGHTS_URL})")
    parser.add_argument("dst", help="output .npz")
    args = parser.parse_args(argv)
    convert_pth_to_npz(args.src, args.dst)
    print(f"wrote {args.dst}; set --config.{CONFIG_KEY}={args.dst}")


if __name__ == "__main__":
    main()
