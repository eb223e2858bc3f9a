"""Train one config over several seeds and summarise a metric: median, spread, the curve, time.

    python benchmarks/seeds.py --config=configs/infogan_mnist.py --metric=eval/code_accuracy \
        --seeds=0,1,2 --root=/tmp/infogan_seeds
    python benchmarks/seeds.py ... -- --config.train.num_steps=2500   # overrides for every seed

Each seed trains with `launch.py` in `ROOT/seed_S` (re-running resumes; a finished seed is not
trained again) and the summary goes to `ROOT/seeds.json`: per seed the metric at every step it
was evaluated, its final value, every other `eval/*` value of the last evaluation and the wall
time of the run; over the seeds the median, min and max of the final metric, and the step after
which the median curve gains less than `--plateau` (where longer training stops paying).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_rows(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise_seed(rows: list[dict], metric: str) -> dict:
    """The metric's curve {step: value}, its last value, and the last value of every eval/* key."""
    curve = {int(r["step"]): float(r[metric]) for r in rows if metric in r}
    if not curve:
        raise SystemExit(f"seeds: error: no '{metric}' in metrics.jsonl; check the config's evals")
    evals = {}
    for r in rows:
        evals.update({k: v for k, v in r.items() if k.startswith("eval/") and isinstance(v, (int, float))})
    return {"curve": curve, "final": curve[max(curve)], "final_step": max(curve), "last_evals": evals}


def plateau_step(curves: list[dict[int, float]], tolerance: float) -> int | None:
    """First step of the median curve after which it never gains more than `tolerance`."""
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    if not steps:
        return None
    median = [statistics.median(c[s] for c in curves) for s in steps]
    for i, s in enumerate(steps):
        if max(median[i:]) - median[i] <= tolerance:
            return s
    return steps[-1]


def summarise(seeds: dict[int, dict], metric: str, tolerance: float) -> dict:
    finals = [s["final"] for s in seeds.values()]
    return {
        "metric": metric,
        "median": statistics.median(finals),
        "min": min(finals),
        "max": max(finals),
        "plateau_step": plateau_step([s["curve"] for s in seeds.values()], tolerance),
        "seeds": {str(k): v for k, v in seeds.items()},
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--root", required=True)
    parser.add_argument("--plateau", type=float, default=0.01, help="gain below which the curve has plateaued")
    args, overrides = parser.parse_known_args(argv)
    overrides = [o for o in overrides if o != "--"]
    seeds = [int(s) for s in args.seeds.split(",")]
    os.makedirs(args.root, exist_ok=True)
    out = os.path.join(args.root, "seeds.json")
    previous = json.load(open(out))["seeds"] if os.path.exists(out) else {}
    results = {}
    for seed in seeds:
        workdir = os.path.join(args.root, f"seed_{seed}")
        command = [sys.executable, os.path.join(ROOT, "launch.py"), f"--config={args.config}",
                   f"--config.seed={seed}", f"--workdir={workdir}", *overrides]
        print(f"seeds: seed {seed}: {' '.join(command[1:])}", flush=True)
        start = time.time()
        subprocess.run(command, check=True)
        seconds = time.time() - start
        summary = summarise_seed(read_rows(os.path.join(workdir, "metrics.jsonl")), args.metric)
        # A re-run of a finished seed only resumes and stops: keep the first run's time.
        old = previous.get(str(seed), {})
        summary["seconds"] = old.get("seconds", seconds) if old.get("final_step") == summary["final_step"] else seconds
        results[seed] = summary
        print(f"seeds: seed {seed}: {args.metric} = {summary['final']:.4f} at step {summary['final_step']} "
              f"({summary['seconds'] / 60:.1f} min)", flush=True)
        with open(out, "w") as f:
            json.dump(summarise(results, args.metric, args.plateau), f, indent=1)
    report = summarise(results, args.metric, args.plateau)
    print(f"seeds: {args.metric}: median {report['median']:.4f} (min {report['min']:.4f}, max {report['max']:.4f}); "
          f"plateau from step {report['plateau_step']}; {out}")


if __name__ == "__main__":
    main()
