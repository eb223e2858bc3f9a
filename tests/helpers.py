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


def assert_trees_equal(a, b, atol=0.0):
    import jax

    flat_a, tree_a = jax.tree.flatten(a)
    flat_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=atol)


def launch(repo_root, *args, cwd=None):
    env = dict(os.environ)
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
