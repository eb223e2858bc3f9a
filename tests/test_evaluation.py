"""Evaluation during training (FID in a judge's features, MS-SSIM diversity), the best
checkpoint kept beside the latest, and the jobs that read a trained generator: synthesize
(a tfds dataset) and fid_study."""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from ganjax import evaluators, judges, runs, train
from ganjax.checkpoint import Checkpointer
from ganjax.data import pipeline
from ganjax.errors import CheckpointError, ConfigError, OutputExistsError
from ganjax.metrics import diversity, fid as fid_lib, ssim
from tests.helpers import launch, load_config

FID_TINY = dict(num_samples=64, max_real=128, judge_steps=30)


def _evaluated_config(name="cgan_mnist", steps=6):
    """A tiny config with FID every 2 steps, kept-best by FID, one latest checkpoint."""
    config = load_config(None, name)
    config.evals = {}
    config.evals.fid = evaluators.entry("fid", every=2, **FID_TINY)
    config.evals.ms_ssim = evaluators.entry("ms_ssim", every=3, batch_size=8, num_batches=2)
    config.train.num_steps = steps
    config.train.checkpoint_every = 100
    config.train.keep_checkpoints = 1
    config.train.best_metric = "fid"
    return config


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("evaluated") / "run")
    config = _evaluated_config()
    train.train_and_evaluate(config, workdir)
    return workdir, config


def _rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


# --------------------------------------------------------------------------------------------
# The best checkpoint.
# --------------------------------------------------------------------------------------------


def test_the_checkpointer_keeps_the_latest_and_the_lowest_fid(tmp_path):
    states = {s: {"w": np.full(3, float(s), np.float32)} for s in range(1, 8)}
    fids = {1: 5.0, 3: 2.0, 5: 3.0}  # steps 2, 4, 6, 7 carry no metric
    with Checkpointer(str(tmp_path), keep=2, best_metric="fid") as c:
        for step, state in states.items():
            c.save(step, state, metrics={"fid": fids[step]} if step in fids else None)
            c.wait_until_finished()
        assert c.all_steps() == [3, 6, 7]  # the two newest and the best
        assert c.best_step() == 3 and c.metrics(3) == {"fid": 2.0}
        assert float(c.restore({"w": np.zeros(3, np.float32)}, c.best_step())["w"][0]) == 3.0
    # Highest is best for accuracies; without a best metric only the newest stay.
    with Checkpointer(str(tmp_path / "max"), keep=1, best_metric="acc", best_mode="max") as c:
        for step, acc in ((1, 0.2), (2, 0.9), (3, 0.5), (4, None)):
            c.save(step, states[step], metrics=None if acc is None else {"acc": acc})
            c.wait_until_finished()
        assert c.all_steps() == [2, 4] and c.best_step() == 2
    with Checkpointer(str(tmp_path / "plain"), keep=2) as c:
        for step in (1, 2, 3):
            c.save(step, states[step])
            c.wait_until_finished()
        assert c.all_steps() == [2, 3] and c.best_step() is None


def test_training_keeps_the_checkpoint_with_the_lowest_fid(evaluated_run):
    workdir, config = evaluated_run
    fid = {r["step"]: r["eval/fid"] for r in _rows(workdir) if "eval/fid" in r}
    assert sorted(fid) == [2, 4, 6] and all(np.isfinite(v) and v > 0 for v in fid.values())
    best = min(fid, key=fid.get)
    steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
    assert steps == sorted({best, 6})
    assert runs.load_trained(workdir, "best").step == best
    assert runs.load_trained(workdir, "latest").step == 6
    # A run without a best metric has no best checkpoint to restore.
    plain = load_config(None, "cgan_mnist")
    plain.evals = {}
    plain.train.num_steps = 2
    train.train_and_evaluate(plain, workdir + "_plain")
    with pytest.raises(CheckpointError, match="restore=latest"):
        runs.load_trained(workdir + "_plain", "best")


def test_best_metric_must_name_an_evaluator(repo_root, tmp_path):
    result = launch(repo_root, "--config=configs/cgan_mnist.py:tiny", f"--workdir={tmp_path}/run",
                    "--config.train.best_metric=fid")
    assert result.returncode == 2 and "names no evaluator" in result.stderr, result.stderr[-2000:]
    result = launch(repo_root, "--config=configs/cgan_mnist.py:tiny", f"--workdir={tmp_path}/run",
                    "--config.restore=newest")
    assert result.returncode == 2 and "'latest', 'best' or a step number" in result.stderr
    assert not os.path.exists(tmp_path / "run")


# --------------------------------------------------------------------------------------------
# The evaluators, recomputed independently.
# --------------------------------------------------------------------------------------------


def test_fid_evaluator_is_the_fid_of_judge_features_with_cached_real_statistics(evaluated_run):
    workdir, config = evaluated_run
    trained = runs.load_trained(workdir, "latest")
    judge = judges.load_or_train(os.path.join(workdir, "judges"), config.data, "label", seed=config.seed, steps=30)
    real = pipeline.load_arrays(config.data, "train", limit=128)[0]
    # The evaluator's samples at step 6: the latent prior with its key of that step.
    fid_eval = evaluators.get("fid")("fid", config.evals.fid, config, trained.algorithm, workdir)
    parts = trained.algorithm.latent.sample(fid_eval.sample_key(6), 64)
    samples = np.asarray(trained.algorithm.generate(trained.state, parts))
    want = fid_lib.fid_from_features(judge.features(samples), judge.features(real))
    got = [r["eval/fid"] for r in _rows(workdir) if r.get("step") == 6 and "eval/fid" in r][0]
    np.testing.assert_allclose(got, want, rtol=1e-3)  # float32 features, two FID routes
    # The real statistics were written once, with what they are.
    stats = [f for f in os.listdir(os.path.join(workdir, "fid_stats")) if f.endswith(".json")]
    assert len(stats) == 1
    meta = json.load(open(os.path.join(workdir, "fid_stats", stats[0])))
    assert meta["num_images"] == 128 and meta["split"] == "train" and meta["dim"] == judge.features(real[:2]).shape[1]
    # Successive FID: between the samples of consecutive evaluations.
    successive = [r for r in _rows(workdir) if "eval/fid/successive" in r]
    assert [r["step"] for r in successive] == [4, 6] and all(r["eval/fid/successive"] >= 0 for r in successive)


def test_class_coverage_evaluator_counts_the_judges_readings_and_its_confident_share(evaluated_run, tmp_path):
    workdir, config = evaluated_run
    trained = runs.load_trained(workdir, "latest")
    judge = judges.load_or_train(os.path.join(workdir, "judges"), config.data, "label", seed=config.seed, steps=30)
    entry = evaluators.entry("class_coverage", num_samples=200, judge_steps=30, confidence=0.2)
    evaluator = evaluators.get("class_coverage")("class_coverage", entry, config, trained.algorithm, workdir)
    got = {k: v for k, v in evaluator.run(trained.state, 6) if np.ndim(v) == 0}
    # Independently: the same samples (the evaluator's key of step 6), jax's softmax of the judge's logits.
    parts = trained.algorithm.latent.sample(evaluator.sample_key(6), 200)
    samples = np.asarray(trained.algorithm.generate(trained.state, parts))
    probabilities = np.asarray(jax.nn.softmax(judge.logits(samples), -1))
    fractions = np.bincount(probabilities.argmax(-1), minlength=10) / 200
    assert got["class_coverage/min_fraction"] == fractions.min()
    assert got["class_coverage/max_fraction"] == fractions.max()
    assert got["class_coverage/confident"] == pytest.approx(np.mean(probabilities.max(-1) >= 0.2), abs=1 / 200)
    real = np.asarray(jax.nn.softmax(judge.logits(pipeline.load_arrays(config.data, "test")[0]), -1)).max(-1)
    assert got["class_coverage/confident_real"] == pytest.approx(np.mean(real >= 0.2), abs=1 / len(real))
    # 6 steps of G draw no digits yet (the 30-step judge reads 17% of real ones at 0.2).
    assert got["class_coverage/confident_real"] > got["class_coverage/confident"]
    # The threshold is checked before anything runs.
    bad = config.copy_and_resolve_references()
    bad.evals = {"class_coverage": evaluators.entry("class_coverage", confidence=1.5)}
    with pytest.raises(ConfigError, match=r"class_coverage.confidence must be in \(0, 1\)"):
        train.train_and_evaluate(bad, str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()


def test_ms_ssim_evaluator_scores_one_class_per_batch(evaluated_run):
    workdir, config = evaluated_run
    rows = {r["step"]: r for r in _rows(workdir) if "eval/ms_ssim" in r}
    assert sorted(rows) == [3, 6]
    real = [r["eval/ms_ssim/real"] for r in _rows(workdir) if "eval/ms_ssim/real" in r]
    images, labels = pipeline.load_arrays(config.data, "train", limit=8 * 2 * 20)[:2]
    kwargs = {"power_factors": ssim.ms_ssim_power_factors(ssim.max_num_scales(28))}
    want = np.mean([diversity.mean_pairwise_ms_ssim(images[labels == c][:8], batch_size=8, **kwargs) for c in (0, 1)])
    np.testing.assert_allclose(real[0], want, rtol=1e-6)
    assert all(0.0 < r["eval/ms_ssim"] <= 1.0 for r in rows.values())


def test_fid_evaluator_needs_inception_weights_to_use_inception(tmp_path):
    config = _evaluated_config()
    config.evals.fid.features = "inception"
    config.eval.inception_weights = str(tmp_path / "absent.pth")
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    config.evals.fid.features = "resnet"
    with pytest.raises(ConfigError, match="features must be one of"):
        train.train_and_evaluate(config, str(tmp_path / "run2"))


# --------------------------------------------------------------------------------------------
# synthesize.
# --------------------------------------------------------------------------------------------


def _load(tfds_dir):
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(tfds_dir)
    examples = list(builder.as_dataset(split="train").as_numpy_iterator())
    return builder, examples


def test_synthesize_writes_a_tfds_dataset_of_the_best_checkpoint(repo_root, evaluated_run, tmp_path):
    workdir, config = evaluated_run
    out = tmp_path / "export"
    args = ["--config=configs/cgan_mnist.py:tiny", f"--workdir={workdir}", "--config.job=synthesize",
            "--config.restore=best", "--config.jobs.synthesize.num_per_class=7", f"--config.jobs.synthesize.output={out}"]
    result = launch(repo_root, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.load(open(out / "synthetic_cgan_mnist_tiny" / "synthesize.json"))
    assert summary["checkpoint_step"] == runs.load_trained(workdir, "best").step and summary["mode"] == "class"
    builder, examples = _load(summary["tfds_dir"])
    real = pipeline.open_split(config.data).info
    assert builder.info.features["label"].names == list(real.class_names)
    assert builder.info.features["image"].shape == (28, 28, 1) and len(examples) == 70
    assert np.bincount([e["label"] for e in examples], minlength=10).tolist() == [7] * 10
    assert os.path.exists(summary["preview"])
    # The images are the generator's, class by class, from the job's seed.
    trained = runs.load_trained(workdir, "best")
    import jax.numpy as jnp

    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(0), 3), 0)
    parts = trained.algorithm.latent.sample(key, 7, label=jnp.full((7,), 3, jnp.int32))
    want = np.clip(np.round((np.asarray(trained.algorithm.generate(trained.state, parts)) + 1) * 127.5), 0, 255)
    got = np.stack([e["image"] for e in examples if e["label"] == 3])
    np.testing.assert_allclose(np.sort(got.reshape(7, -1), 0), np.sort(want.reshape(7, -1), 0), atol=1)
    # Nothing is overwritten: the same export again is a one-line error.
    again = launch(repo_root, *args)
    assert again.returncode == 2 and "already holds a dataset" in again.stderr, again.stderr[-2000:]


def test_synthesize_labels_unconditional_infogan_and_attribute_generators(tmp_path):
    from ganjax import synthesize

    # An unconditional DCGAN trained on one class: labelled with it, in the 10-class numbering.
    config = load_config(None, "dcgan_mnist")
    config.data.classes = "3"
    config.train.num_steps = 1
    train.train_and_evaluate(config, str(tmp_path / "one_class"))
    config.job, config.jobs.synthesize.num_per_class = "synthesize", 5
    summary = synthesize.run(config, str(tmp_path / "one_class"))
    builder, examples = _load(summary["tfds_dir"])
    assert [e["label"] for e in examples] == [3] * 5 and builder.info.features["label"].num_classes == 10
    config.data.classes, config.jobs.synthesize.name = "", "other"
    with pytest.raises(ConfigError, match="need a label"):
        synthesize.run(config, str(tmp_path / "one_class"))
    config.jobs.synthesize.label = "seven"
    with pytest.raises(ConfigError, match="not a class"):
        synthesize.run(config, str(tmp_path / "one_class"))
    # InfoGAN: by categorical code, each code named by the class Q matches it to.
    config = load_config(None, "infogan_mnist")
    config.evals = {}
    config.train.num_steps = 1
    train.train_and_evaluate(config, str(tmp_path / "infogan"))
    config.jobs.synthesize.num_per_class = 3
    summary = synthesize.run(config, str(tmp_path / "infogan"))
    _, examples = _load(summary["tfds_dir"])
    assert summary["mode"] == "categorical_code" and len(summary["code_to_class"]) == 10
    assert sorted(set(e["label"] for e in examples)) == list(range(10)) and len(examples) == 30
    assert 0.0 < summary["code_accuracy"] <= 1.0 and summary["code_batch_stats"] == "running"  # no evaluator
    # ACGAN on the digit attributes: the attribute vectors are a feature, forced settings hold.
    config = load_config(None, "acgan_digit_attributes")
    config.evals = {}
    config.train.num_steps = 1
    train.train_and_evaluate(config, str(tmp_path / "attributes"))
    config.jobs.synthesize.num_per_class = 6
    config.jobs.synthesize.attributes = "loop=1,even=0"
    summary = synthesize.run(config, str(tmp_path / "attributes"))
    builder, examples = _load(summary["tfds_dir"])
    assert set(builder.info.features["attributes"].keys()) == {"even", "large", "loop", "straight"}
    assert len(examples) == 6 and all(e["attributes"]["loop"] and not e["attributes"]["even"] for e in examples)
    config.jobs.synthesize.attributes, config.jobs.synthesize.name = "loop=2", "bad"
    with pytest.raises(ConfigError, match="NAME=0 or NAME=1"):
        synthesize.run(config, str(tmp_path / "attributes"))


def test_synthesize_filters_by_the_judges_confidence(evaluated_run, tmp_path):
    from ganjax import synthesize

    workdir, config = evaluated_run
    config = config.copy_and_resolve_references()
    config.jobs.synthesize.update(num_per_class=4, min_confidence=0.05, batch_size=50, max_draws_factor=50,
                                  output=str(tmp_path), judge_steps=30)
    judge = judges.load_or_train(os.path.join(workdir, "judges"), config.data, "label", seed=config.seed, steps=30)
    summary = synthesize.run(config, workdir)
    _, examples = _load(summary["tfds_dir"])
    images = np.stack([e["image"] for e in examples]).astype(np.float32) / 127.5 - 1
    labels = np.array([e["label"] for e in examples])
    # Every kept image is read as its class with probability >= 0.05 (uint8 rounding aside).
    probs = np.asarray(jax.nn.softmax(judge.logits(images), -1))[np.arange(len(labels)), labels]
    assert np.all(probs >= 0.04)
    for name, count in summary["counts"].items():
        assert count["images"] <= 4 and 0.0 <= count["kept_fraction"] <= 1.0 and count["drawn"] >= 50


# --------------------------------------------------------------------------------------------
# fid_study.
# --------------------------------------------------------------------------------------------


def test_fid_study_job_writes_the_table_beside_report_003(repo_root, evaluated_run, tmp_path):
    workdir, _ = evaluated_run
    result = launch(repo_root, "--config=configs/cgan_mnist.py:tiny", f"--workdir={workdir}", "--config.job=fid_study",
                    "--config.jobs.fid_study.batch_sizes=4,64", "--config.jobs.fid_study.trials=3",
                    "--config.jobs.fid_study.judge_steps=30")
    assert result.returncode == 0, result.stderr[-3000:]
    study = json.load(open(os.path.join(workdir, "fid_study.json")))
    assert set(study["comparisons"]) == {"real_vs_real", "real_vs_generator"}
    assert study["report_003_rel_std_percent"] == {"4": 15.7, "64": 8.5, "256": 10.3, "1024": 24.0}
    for comparison in study["comparisons"].values():
        rows = comparison["rows"]
        assert [r["batch_size"] for r in rows] == [4, 64]
        for r in rows:
            np.testing.assert_allclose(r["rel_std_percent"], 100 * r["std"] / r["mean"], rtol=1e-9)
    # Real vs real is the noise floor: lower than real vs this barely trained generator.
    assert study["comparisons"]["real_vs_real"]["rows"][1]["mean"] < study["comparisons"]["real_vs_generator"]["rows"][1]["mean"]
    assert "| 64 |" in open(os.path.join(workdir, "fid_study.md")).read()
    # A second study keeps the first one's files.
    again = launch(repo_root, "--config=configs/cgan_mnist.py:tiny", f"--workdir={workdir}", "--config.job=fid_study",
                   "--config.jobs.fid_study.batch_sizes=4", "--config.jobs.fid_study.trials=2",
                   "--config.jobs.fid_study.judge_steps=30", "--config.jobs.fid_study.other_split=")
    assert again.returncode == 0, again.stderr[-3000:]
    kept = [f for f in os.listdir(workdir) if f.startswith("fid_study_") and f.endswith(".json")]
    assert len(kept) == 1 and json.load(open(os.path.join(workdir, kept[0]))) == study
    assert set(json.load(open(os.path.join(workdir, "fid_study.json")))["comparisons"]) == {"real_vs_generator"}


def test_fid_evaluator_in_inception_features_with_weights_from_the_config(evaluated_run, tmp_path):
    """The Inception path end to end on random weights the test makes (the standard file is
    not downloaded): 2048 features of images resized to 299x299, statistics cached by file."""
    from ganjax.metrics import inception

    workdir, config = evaluated_run
    shapes = jax.eval_shape(inception.FIDInceptionV3().init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 299, 299, 3), np.float32))
    rng = np.random.default_rng(0)

    def init(path, s):  # He-scaled kernels, identity batch norm: features neither vanish nor blow up
        name = jax.tree_util.keystr(path)
        if "kernel" in name:
            return (rng.normal(size=s.shape) * np.sqrt(2.0 / np.prod(s.shape[:-1]))).astype(np.float32)
        return (np.ones if ("var" in name or "scale" in name) else np.zeros)(s.shape, np.float32)

    variables = jax.tree_util.tree_map_with_path(init, shapes)
    weights = tmp_path / "fid_inception.npz"
    inception.save_variables(variables, weights)
    config = config.copy_and_resolve_references()
    config.eval.inception_weights = str(weights)
    entry = evaluators.entry("fid", features="inception", num_samples=4, max_real=4)
    trained = runs.load_trained(workdir, "latest")
    run_dir = str(tmp_path / "run")
    fid_eval = evaluators.get("fid")("fid_inception", entry, config, trained.algorithm, run_dir)
    (name, value), = list(fid_eval.run(trained.state, 6))
    assert name == "fid_inception" and np.isfinite(value) and value > 0, value
    meta = [json.load(open(os.path.join(run_dir, "fid_stats", f)))
            for f in os.listdir(os.path.join(run_dir, "fid_stats")) if f.endswith(".json")]
    assert len(meta) == 1 and meta[0]["dim"] == 2048 and meta[0]["num_images"] == 4
    assert meta[0]["space"].startswith("inception_fid_inception.npz")
