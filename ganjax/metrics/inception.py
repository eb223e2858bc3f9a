"""The FID Inception-v3 network in Flax and the converter for pytorch-fid's weights file.

FID is defined on the 2048-d pool3 features of the Inception-v3 graph that TTUR
(Heusel et al. 2017) froze in 2015; pytorch-fid (mseitzer/pytorch-fid) ported that graph and
its weights to PyTorch as `pt_inception-2015-12-05-6726825d.pth`. `FIDInceptionV3` is that
port: torchvision's Inception-v3 blocks with pytorch-fid's `FIDInceptionA/C/E_1/E_2` patches
(average pools exclude the zero padding, TF-style; the last block max-pools), BatchNorm
eps 1e-3, the input resized to 299x299 bilinearly without antialiasing (`F.interpolate(...,
mode='bilinear', align_corners=False)`), and the spatial mean of Mixed_7c as the feature.

Weights are never downloaded. Get the file once from

    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

and point the config key `eval.inception_weights` at it; or convert it once (needs torch)

    python -m ganjax.metrics.inception pt_inception-2015-12-05-6726825d.pth fid_inception.npz

and point the key at the .npz, which loads with numpy only. A missing file raises
`InceptionWeightsNotFoundError` (a FileNotFoundError): there is no random-weight fallback.
tests/test_metrics_inception.py proves the port against pytorch-fid's own modules.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from ganjax.models import weights_io

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
CONFIG_KEY = "eval.inception_weights"
INPUT_SIZE = 299
FEATURE_DIM = 2048


class InceptionWeightsNotFoundError(FileNotFoundError):
    """The FID Inception weights file is missing; the message says where to get it."""


# --------------------------------------------------------------------------------------------
# The network. Module names follow the PyTorch state_dict, so conversion is a renaming.
# --------------------------------------------------------------------------------------------
class BasicConv(nn.Module):
    """Conv (no bias) -> BatchNorm(eps=1e-3, running statistics) -> ReLU."""
    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.features, self.kernel_size, self.strides,
                    padding=[(p, p) for p in self.padding], use_bias=False,
                    precision=self.precision, name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _avg_pool_3x3(x):
    """TF's 3x3/1 SAME average pool: zero padding excluded from the mean."""
    return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, stride: int = 1):
    padding = ((1, 1), (1, 1)) if stride == 1 else "VALID"
    return nn.max_pool(x, (3, 3), (stride, stride), padding=padding)


class InceptionA(nn.Module):
    """35x35 block (pytorch-fid FIDInceptionA)."""
    pool_features: int
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(BasicConv, precision=self.precision)
        b1 = conv(64, (1, 1), name="branch1x1")(x)
        b5 = conv(48, (1, 1), name="branch5x5_1")(x)
        b5 = conv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = conv(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = conv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (torchvision InceptionB, Mixed_6a)."""
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(BasicConv, precision=self.precision)
        b3 = conv(384, (3, 3), strides=(2, 2), name="branch3x3")(x)
        bd = conv(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = conv(96, (3, 3), strides=(2, 2), name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3(x, stride=2)], axis=-1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (pytorch-fid FIDInceptionC)."""
    channels_7x7: int
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(BasicConv, precision=self.precision)
        c7 = self.channels_7x7
        row = dict(kernel_size=(1, 7), padding=(0, 3))
        col = dict(kernel_size=(7, 1), padding=(3, 0))
        b1 = conv(192, (1, 1), name="branch1x1")(x)
        b7 = conv(c7, (1, 1), name="branch7x7_1")(x)
        b7 = conv(c7, **row, name="branch7x7_2")(b7)
        b7 = conv(192, **col, name="branch7x7_3")(b7)
        bd = conv(c7, (1, 1), name="branch7x7dbl_1")(x)
        bd = conv(c7, **col, name="branch7x7dbl_2")(bd)
        bd = conv(c7, **row, name="branch7x7dbl_3")(bd)
        bd = conv(c7, **col, name="branch7x7dbl_4")(bd)
        bd = conv(192, **row, name="branch7x7dbl_5")(bd)
        bp = conv(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (torchvision InceptionD, Mixed_7a)."""
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(BasicConv, precision=self.precision)
        b3 = conv(192, (1, 1), name="branch3x3_1")(x)
        b3 = conv(320, (3, 3), strides=(2, 2), name="branch3x3_2")(b3)
        b7 = conv(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = conv(192, (3, 3), strides=(2, 2), name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3(x, stride=2)], axis=-1)


class InceptionE(nn.Module):
    """8x8 block with expanded filter banks; pool='avg' is FIDInceptionE_1 (Mixed_7b),
    pool='max' is FIDInceptionE_2 (Mixed_7c, a quirk of the 2015 TF graph)."""
    pool: str = "avg"
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(BasicConv, precision=self.precision)
        row = dict(kernel_size=(1, 3), padding=(0, 1))
        col = dict(kernel_size=(3, 1), padding=(1, 0))
        b1 = conv(320, (1, 1), name="branch1x1")(x)
        b3 = conv(384, (1, 1), name="branch3x3_1")(x)
        b3 = jnp.concatenate([conv(384, **row, name="branch3x3_2a")(b3),
                              conv(384, **col, name="branch3x3_2b")(b3)], axis=-1)
        bd = conv(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = conv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([conv(384, **row, name="branch3x3dbl_3a")(bd),
                              conv(384, **col, name="branch3x3dbl_3b")(bd)], axis=-1)
        pooled = _avg_pool_3x3(x) if self.pool == "avg" else _max_pool_3x3(x)
        bp = conv(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """FID Inception-v3 up to pool3: images [N, H, W, 1 or 3] in [-1, 1] -> features [N, 2048].

    Gray images are repeated to 3 channels; any size is resized to 299x299 (bilinear,
    half-pixel centres, no antialiasing: pytorch-fid's resizer). `precision` is the matmul
    precision of every convolution (HIGHEST: the features do not depend on the accelerator's
    default bf16/TF32 passes; pass None for speed).
    """
    resize_input: bool = True
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, images):
        x = jnp.asarray(images)
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"FIDInceptionV3 needs images [N, H, W, 1 or 3], got {x.shape}.")
        if x.shape[-1] == 1:
            x = jnp.repeat(x, 3, axis=-1)
        if self.resize_input and x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
            x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 3), "bilinear",
                                 antialias=False, precision=jax.lax.Precision.HIGHEST)
        conv = functools.partial(BasicConv, precision=self.precision)
        p = dict(precision=self.precision)
        x = conv(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)
        x = conv(32, (3, 3), name="Conv2d_2a_3x3")(x)
        x = conv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3(x, stride=2)
        x = conv(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = conv(192, (3, 3), name="Conv2d_4a_3x3")(x)
        x = _max_pool_3x3(x, stride=2)
        x = InceptionA(32, **p, name="Mixed_5b")(x)
        x = InceptionA(64, **p, name="Mixed_5c")(x)
        x = InceptionA(64, **p, name="Mixed_5d")(x)
        x = InceptionB(**p, name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                         ("Mixed_6e", 192)):
            x = InceptionC(c7, **p, name=name)(x)
        x = InceptionD(**p, name="Mixed_7a")(x)
        x = InceptionE("avg", **p, name="Mixed_7b")(x)
        x = InceptionE("max", **p, name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))


# --------------------------------------------------------------------------------------------
# Weights: PyTorch state_dict <-> Flax variables, .npz cache, loading with clear errors.
# --------------------------------------------------------------------------------------------
_BN_NAMES = {"weight": ("params", "scale"), "bias": ("params", "bias"),
             "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}
_IGNORED_PREFIXES = ("fc.", "AuxLogits.")  # the 1008-way classifier; not part of pool3


def convert_state_dict(state_dict: Mapping[str, Any]) -> dict:
    """PyTorch FID-Inception state_dict (name -> tensor/array) -> Flax variables.

    `X.conv.weight` [out, in, kh, kw] becomes params X/conv/kernel [kh, kw, in, out];
    `X.bn.{weight, bias}` params X/bn/{scale, bias}; `X.bn.running_{mean, var}` batch_stats
    X/bn/{mean, var}. The classifier (`fc.*`) and `num_batches_tracked` are dropped. The
    result is checked against the architecture (names and shapes).
    """
    flat = {}
    for name, value in state_dict.items():
        if name.startswith(_IGNORED_PREFIXES) or name.endswith("num_batches_tracked"):
            continue
        array = weights_io.to_numpy(value)
        *path, layer, kind = name.split(".")
        if layer == "conv" and kind == "weight":
            flat[("params", *path, "conv", "kernel")] = array.transpose(2, 3, 1, 0)
        elif layer == "bn" and kind in _BN_NAMES:
            collection, leaf = _BN_NAMES[kind]
            flat[(collection, *path, "bn", leaf)] = array
        else:
            raise ValueError(f"convert_state_dict: unexpected entry {name!r} "
                             f"{tuple(array.shape)}: not an FID Inception-v3 state_dict.")
    variables = traverse_util.unflatten_dict(flat)
    _check_variables(variables)
    return variables


def save_variables(variables: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Writes Flax variables to an .npz (keys 'params/Mixed_5b/branch1x1/conv/kernel', ...)."""
    weights_io.save_npz(variables, path)


def load_variables(path: str | os.PathLike | None) -> dict:
    """Loads FID Inception weights from a converted .npz, or a pytorch-fid .pth (needs torch).

    Raises:
        InceptionWeightsNotFoundError: `path` is unset or does not exist.
        ValueError: unknown suffix, or names/shapes that are not the FID Inception-v3's.
    """
    if not path or not os.path.isfile(path):
        raise InceptionWeightsNotFoundError(
            f"FID Inception weights not found at {str(path)!r}. Nothing is downloaded "
            f"automatically. Download {FID_WEIGHTS_URL} (pytorch-fid's release, 91 MB) and set "
            f"the config key `{CONFIG_KEY}` (e.g. --config.{CONFIG_KEY}=/path/to/"
            f"pt_inception-2015-12-05-6726825d.pth), or convert it once to .npz without torch at "
            f"run time: python -m ganjax.metrics.inception SRC.pth DST.npz.")
    return weights_io.load(path, convert=convert_state_dict, check=_check_variables,
                           converter="ganjax.metrics.inception", what="FID Inception")


def convert_pth_to_npz(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """One-off conversion of pytorch-fid's .pth (needs torch) into a torch-free .npz."""
    save_variables(load_variables(src), dst)


def inception_apply_fn(variables: Mapping[str, Any], precision=jax.lax.Precision.HIGHEST
                       ) -> Callable[[jax.Array], jax.Array]:
    """images [N, H, W, C] in [-1, 1] -> pool3 features [N, 2048], for
    `ganjax.metrics.features.batched_feature_extractor`."""
    model = FIDInceptionV3(precision=precision)
    return functools.partial(model.apply, variables)


@functools.cache
def _expected_shapes() -> dict:
    shapes = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
    return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes).items()}


def _check_variables(variables: Mapping[str, Any]) -> None:
    weights_io.check_shapes(variables, _expected_shapes(), "FID Inception-v3")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert pytorch-fid's Inception weights (.pth) to a torch-free .npz.")
    parser.add_argument("src", help="pt_inception-2015-12-05-6726825d.pth (from "
                        f"{FID_WEIGHTS_URL})")
    parser.add_argument("dst", help="output .npz")
    args = parser.parse_args(argv)
    convert_pth_to_npz(args.src, args.dst)
    print(f"wrote {args.dst}; set --config.{CONFIG_KEY}={args.dst}")


if __name__ == "__main__":
    main()
