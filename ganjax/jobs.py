"""What `config.job` can run, and the config sections the jobs own.

A job is `run(config, workdir)` in some module. Jobs that read a trained run (translate,
synthesize, fid_study) or train many (augment: classifiers under arms x seeds) keep their
settings under `config.jobs.<job>`, given by the module's `default_config()`; a training run may
resume with any `jobs.*` changed.
"""

from __future__ import annotations

import importlib
from typing import Callable

import ml_collections

from ganjax.errors import ConfigError

# config.job -> "module:function(config, workdir)".
JOBS = {
    "train": "ganjax.train:train_and_evaluate",
    "dataset_stats": "ganjax.data.stats:run",
    "translate": "ganjax.translate:run",
    "synthesize": "ganjax.synthesize:run",
    "fid_study": "ganjax.fid_study:run",
    "augment": "ganjax.augment:run",
    "train_predictor": "ganjax.gans.predictor:run",
    "recover": "ganjax.recover:run",
    "edit": "ganjax.edit:run",
}


def _module_and_name(job: str):
    module, name = JOBS[job].split(":")
    return importlib.import_module(module), name


def get(job: str) -> Callable:
    """The function that runs `job`; a ConfigError naming the choices otherwise."""
    if job not in JOBS:
        raise ConfigError(f"unknown config.job {job!r}; choose one of {sorted(JOBS)}.")
    module, name = _module_and_name(job)
    return getattr(module, name)


def default_configs() -> ml_collections.ConfigDict:
    """`config.jobs`: one section per job whose module has `default_config()`."""
    c = ml_collections.ConfigDict()
    for job in JOBS:
        module, _ = _module_and_name(job)
        if hasattr(module, "default_config"):
            c[job] = module.default_config()
    return c
