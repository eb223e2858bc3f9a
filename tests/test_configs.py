"""Every experiment file in configs/ builds, in its full and its tiny variant, and passes the
value checks `launch.py` runs before anything else (a config that would fail at launch fails here)."""

import importlib
import os

import pytest

from ganjax import config as config_lib
from ganjax import evaluators, gans

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(
    name[:-3] for name in os.listdir(os.path.join(REPO, "configs"))
    if name.endswith(".py") and not name.startswith("_")
)

# Configs whose `:arg` means something else than a variant.
NO_TINY = {"dataset_stats": "its argument names the dataset (configs/dataset_stats.py:fer2013)"}


@pytest.mark.parametrize("variant", [None, "tiny"])
@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_and_validates(name, variant):
    if variant == "tiny" and name in NO_TINY:
        pytest.skip(NO_TINY[name])
    module = importlib.import_module(f"configs.{name}")
    config = module.get_config(variant)
    config_lib.validate(config)
    assert config.gan.name in gans.names()
    for entry_name, entry in (config.get("evals") or {}).items():
        assert entry.type in evaluators.names(), (name, entry_name, entry.type)
    if variant == "tiny":
        assert config.train.num_steps <= 50, f"{name}:tiny trains {config.train.num_steps} steps"


def test_every_config_has_its_run_command_in_the_docstring():
    for name in CONFIGS:
        doc = importlib.import_module(f"configs.{name}").__doc__ or ""
        assert f"configs/{name}.py" in doc, f"configs/{name}.py names no run command"
