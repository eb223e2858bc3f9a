"""Helpers shared by the test modules."""

import importlib
import os
import subprocess
import sys
import time

import numpy as np


def load_config(repo_root, name, variant="tiny"):
    """configs/<name>.py's config (`tiny` by default)."""
    del repo_root
    return importlib.import_module(f"configs.{name}").get_config(variant)


def tiny_config(name: str, steps: int):
    """`configs/<name>.py:tiny` without evaluators, for `steps` steps that log, sample and
    checkpoint once at the end; native convolutions (they compile faster; the forms are equal,
    tests/test_layers.py)."""
    config = load_config(None, name)
    config.evals = {}
    config.model.conv_impl = "native"
    config.train.num_steps = steps
    config.train.checkpoint_every = config.train.sample_every = config.train.log_every = steps
    return config


def tiny_algorithm_config(name: str, **overrides):
    """The registered algorithm `name`'s base config with the `tiny` variant and native
    convolutions; `overrides` as section.field=value, e.g. **{"began.gamma": 0.7}."""
    from ganjax.config import apply_variant, base_config

    config = apply_variant(base_config(name), "tiny")
    config.model.conv_impl = "native"
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    return config


def assert_trees_equal(a, b, atol=0.0):
    import jax

    flat_a, tree_a = jax.tree.flatten(a)
    flat_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=atol)


def numpy_global_norm(tree) -> float:
    """sqrt(sum of x**2 over every leaf), in numpy float64: the reference for global L2 norms."""
    import jax

    return float(np.sqrt(sum((np.asarray(x, np.float64) ** 2).sum() for x in jax.tree.leaves(tree))))


def assert_trees_match_across_devices(a, b, max_drift: float, atol: float = 2e-4, fraction: float = 0.02):
    """Parameters of two runs that differ only in the order of float sums (1 vs 4 devices, or
    another CPU's XLA code): all but `fraction` of each leaf's elements within `atol`, and every
    element within `max_drift`. Adam divides by the gradient's own scale, so a weight whose
    gradient is rounding noise may move by up to the learning rate per step in either run: pass
    `max_drift` = 2 x learning rate x steps."""
    import jax

    flat_a, tree_a = jax.tree.flatten(a)
    flat_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b):
        diff = np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))
        assert diff.max(initial=0.0) <= max_drift, (diff.max(), max_drift)
        assert np.mean(diff > atol) <= fraction, (np.mean(diff > atol), diff.max())


def launch(repo_root, *args, cwd=None, env=None):
    """launch.py with `args` to its end; `env` (if given) is added to this process's."""
    env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, os.path.join(repo_root, "launch.py"), *args],
        capture_output=True, text=True, env=env, cwd=cwd or repo_root, timeout=600,
    )


def start_launch(repo_root, *args, output=subprocess.PIPE):
    """launch.py in the background; stdout and stderr together as text (or `output`)."""
    return subprocess.Popen(
        [sys.executable, os.path.join(repo_root, "launch.py"), *args], cwd=repo_root,
        stdout=output, stderr=subprocess.STDOUT, text=True,
    )


def wait_for_rows(path, rows, timeout=300):
    """Waits until the file at `path` (a metrics.jsonl) has at least `rows` lines."""
    deadline = time.time() + timeout
    while time.time() < deadline and not (path.exists() and path.read_text().count("\n") >= rows):
        time.sleep(0.1)


_TORCHVISION_STUB_LIB = None  # keeps the stub library alive: it owns the op definitions


def import_torch_model_code(module: str):
    """(torch, `module`) for a module built on torchvision's Python model code (torchvision
    itself, pytorch_fid.inception), or a pytest skip when torch or the module is missing.

    PyPI's torchvision wheels are CUDA builds whose compiled ops cannot load next to the CPU
    torch; torchvision 0.28 then fails at import while registering fake kernels for
    `torchvision::nms`/`qnms`. Declaring those two op schemas (never called by the model code
    the tests use) lets its pure-Python model code import.
    """
    import pytest

    global _TORCHVISION_STUB_LIB
    torch = pytest.importorskip("torch")
    top = module.split(".")[0]
    try:
        return torch, importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not installed")
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for name in [m for m in sys.modules if m.split(".")[0] in ("torchvision", top)]:
        del sys.modules[name]
    if _TORCHVISION_STUB_LIB is None:
        _TORCHVISION_STUB_LIB = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            _TORCHVISION_STUB_LIB.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return torch, importlib.import_module(module)


def numpy_gaussian_mmd2(x, y, factors=(0.5, 1.0, 2.0)):
    """The unbiased MMD^2 by double loops in float64, the bandwidth s the median of the pooled
    points' pairwise distances (Gretton et al. 2012, Eq. 3)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    pooled = np.concatenate([x, y])
    d2 = lambda a, b: float(np.sum((a - b) ** 2))
    s2 = np.median([d2(pooled[i], pooled[j]) for i in range(len(pooled)) for j in range(i + 1, len(pooled))])
    k = lambda a, b: np.mean([np.exp(-d2(a, b) / (2 * f * f * s2)) for f in factors])
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy
