"""Training curves as a picture, and where a run collapsed.

Plots `series` (keys) of the run's `metrics.jsonl` (e.g. `train/d_loss`, `train/d_aux_accuracy`,
`eval/label_accuracy`) one panel each: PNG `<name>`. Watches `watch` for a collapse (report
002's WACGAN collapsed after ~13 epochs): the first logged step whose value is more than `drop`
below the best value logged before it. Writes `eval/<name>/collapse_step` (-1: none so far) and
`eval/<name>/best` (the best value of `watch`), and marks the collapse on every panel.
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from ganjax import evaluators, plots


def collapse_step(steps: np.ndarray, values: np.ndarray, drop: float) -> int:
    """First step whose value is more than `drop` below the running best before it; -1 if none."""
    best = -np.inf
    for step, value in zip(steps, values):
        if value < best - drop:
            return int(step)
        best = max(best, value)
    return -1


class Evaluator(evaluators.Evaluator):
    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.series = ("train/d_loss", "train/g_loss")  # metrics.jsonl keys, one panel each
        c.watch = ""  # a key whose fall marks a collapse (e.g. eval/label_accuracy); "" = none
        c.drop = 0.2  # fall below the best so far that counts as a collapse
        return c

    def run(self, state, step):
        e = self.entry
        keys = list(e.series) + ([e.watch] if e.watch and e.watch not in e.series else [])
        series = plots.read_metrics(os.path.join(self.workdir, "metrics.jsonl"), keys)
        marks = {}
        if e.watch:
            steps, values = series[e.watch]
            at = collapse_step(steps, values, e.drop)
            yield f"{self.name}/collapse_step", at
            if len(values):
                yield f"{self.name}/best", float(values.max())
            if at >= 0:
                marks[f"{e.watch} fell > {e.drop}"] = at
        shown = {k: v for k, v in series.items() if len(v[0])}
        if shown:
            yield self.name, plots.curves(shown, title=f"training curves (step {step})", marks=marks)
