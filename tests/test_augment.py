"""The augmentation benchmark: low-data subsets, synthetic batches, the classifier algorithm,
the statistics of the tables, and job=augment end to end on the digits and on a FER2013 CSV."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from ganjax import augment, gans, sharding, train
from ganjax.config import apply_variant, base_config, validate
from ganjax.data import fer2013, pipeline, writer
from ganjax.errors import ConfigError, DatasetError
from ganjax.metrics.accuracy import per_class_accuracy
from tests.helpers import assert_trees_equal, launch, load_config


def launch_ok(repo_root, *args):
    result = launch(repo_root, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


# --------------------------------------------------------------------------------------------
# Low-data subsets.
# --------------------------------------------------------------------------------------------


def test_subset_indices_are_reproducible_per_seed_nested_and_per_class():
    labels = np.repeat(np.arange(4), [30, 30, 2, 30])
    np.random.default_rng(0).shuffle(labels)
    a = pipeline.subset_indices(labels, 5, seed=1)
    np.testing.assert_array_equal(a, pipeline.subset_indices(labels, 5, seed=1))  # reproducible
    assert not np.array_equal(a, pipeline.subset_indices(labels, 5, seed=2))  # the seed matters
    np.testing.assert_array_equal(np.bincount(labels[a]), [5, 5, 2, 5])  # a short class: all of it
    assert set(a) <= set(pipeline.subset_indices(labels, 10, seed=1))  # 2x holds 1x
    assert np.all(np.diff(a) > 0)  # file order kept


def test_per_class_subsets_the_training_split_only():
    config = base_config("classifier")
    config.data.per_class, config.data.subset_seed = 4, 3
    images, labels, info = pipeline.load_arrays(config.data)
    np.testing.assert_array_equal(np.bincount(labels), [4] * 10)
    assert info.class_counts == (4,) * 10 and info.num_train_examples == 40
    again = pipeline.load_arrays(config.data)[0]
    np.testing.assert_array_equal(images, again)
    config.data.subset_seed = 4
    assert not np.array_equal(images, pipeline.load_arrays(config.data)[0])
    assert len(pipeline.load_arrays(config.data, "test")[1]) == 500  # the test split stays whole


# --------------------------------------------------------------------------------------------
# Synthetic examples in the batches; shifts.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_digits(tmp_path_factory):
    """30 white '3's and 10 images of a class the digits do not have."""
    root = tmp_path_factory.mktemp("synthetic")
    images = np.zeros((40, 28, 28, 1), np.uint8)
    images[:30] = 255
    labels = [3] * 30 + [10] * 10
    return writer.write_image_dataset(str(root), "synthetic_digits", images, labels,
                                      [str(i) for i in range(10)] + ["other"])


def _batches(config, start_step=0, n=3):
    mesh = sharding.make_mesh(1)
    _, it = pipeline.build_train_data(config, mesh, start_step=start_step)
    return [jax.device_get(next(it)) for _ in range(n)]


def test_synthetic_fraction_of_each_batch_and_resume(synthetic_digits):
    config = base_config("classifier")
    config.data.batch_size, config.data.shuffle_buffer = 16, 64
    config.data.synthetic, config.data.synthetic_fraction = synthetic_digits, 0.25
    validate(config)
    batches = _batches(config)
    for b in batches:
        assert b["image"].shape == (1, 16, 28, 28, 1)
        np.testing.assert_array_equal(b["label"][0, 12:], 3)  # 4 synthetic, class 'other' left out
        assert np.all(b["image"][0, 12:] == 1.0)  # white, in [-1, 1]
        assert np.all(b["image"][0, :12].min(axis=(1, 2, 3)) == -1.0)  # real digits: black ground
    resumed = _batches(config, start_step=1, n=2)  # a resumed run sees the same batches
    for a, b in zip(batches[1:], resumed):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    config.data.synthetic_fraction = 1.0  # the Classification Accuracy Score arm
    only = _batches(config, n=1)[0]
    assert np.all(only["label"] == 3) and np.all(only["image"] == 1.0)


def test_synthetic_errors_are_one_line(tmp_path, synthetic_digits):
    config = base_config("classifier")
    config.data.batch_size = 16
    config.data.synthetic, config.data.synthetic_fraction = str(tmp_path), 0.5
    with pytest.raises(DatasetError, match="not a readable tfds dataset directory"):
        _batches(config, n=1)
    config.data.synthetic, config.data.synthetic_fraction = synthetic_digits, 0.01
    with pytest.raises(DatasetError, match="at least one of each"):
        _batches(config, n=1)
    config.data.synthetic = ""
    with pytest.raises(ConfigError, match="needs --config.data.synthetic"):
        validate(config)


def test_shift_moves_the_image_and_is_a_function_of_the_position():
    config = base_config("classifier").data
    config.shift = 3
    image = np.full((28, 28, 1), -1.0, np.float32)
    image[10:18, 10:18] = 1.0
    shifted = [pipeline.augment(image, i, config, seed=7).numpy() for i in range(8)]
    again = pipeline.augment(image, 5, config, seed=7).numpy()
    np.testing.assert_array_equal(shifted[5], again)
    for s in shifted:  # the square moved by at most 3 px and kept its size
        rows, cols = np.nonzero(s[..., 0] > 0)
        assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 7
        assert abs(rows.min() - 10) <= 3 and abs(cols.min() - 10) <= 3
    assert len({(np.nonzero(s[..., 0] > 0)[0].min(), np.nonzero(s[..., 0] > 0)[1].min()) for s in shifted}) > 1


# --------------------------------------------------------------------------------------------
# The classifier algorithm.
# --------------------------------------------------------------------------------------------


def test_classifier_learns_real_digits_and_the_evaluator_agrees(tmp_path):
    from ganjax import evaluators

    config = base_config("classifier")
    config.data.per_class = 50
    config.data.batch_size = 32
    config.train.num_steps = 150
    config.train.log_every = 50
    config.classifier.width, config.classifier.hidden = 16, 64
    config.evals.test_accuracy = evaluators.entry("test_accuracy")
    validate(config)
    state = train.train_and_evaluate(config, str(tmp_path / "run"))
    images, labels, info = pipeline.load_arrays(config.data, "test")
    accuracy, per_class = per_class_accuracy(gans.create(config, info).predict(state, images), labels, 10)
    assert accuracy > 0.7, accuracy  # 500 real digits, far above chance (0.1)
    assert np.isclose(np.mean([p * np.sum(labels == c) for c, p in enumerate(per_class)]) * 10 / len(labels), accuracy)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r["eval/test_accuracy"] for r in rows if "eval/test_accuracy" in r]
    assert logged == [pytest.approx(accuracy, abs=1e-6)]
    assert (tmp_path / "run" / "evals" / "test_accuracy_per_class_0000150.png").exists()


def test_classifier_with_synthetic_batches_resumes_bit_exactly(tmp_path, synthetic_digits):
    config = apply_variant(base_config("classifier"), "tiny")
    config.data.synthetic, config.data.synthetic_fraction = synthetic_digits, 0.25
    config.data.shift, config.data.per_class = 2, 5
    config.classifier.model = "vgg"  # BatchNorm statistics are resumed too
    config.train.num_steps, config.train.checkpoint_every = 4, 2
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    # A run stopped after step 2 (the cosine schedule spans the same 4 steps): the same workdir
    # without its last checkpoint.
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "4")
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert_trees_equal(jax.device_get(straight.classifier.params), jax.device_get(resumed.classifier.params))
    assert_trees_equal(jax.device_get(straight.classifier.batch_stats),
                       jax.device_get(resumed.classifier.batch_stats))


def test_a_classifier_needs_labels():
    from ganjax.data.core import DataInfo

    config = apply_variant(base_config("classifier"), "tiny")
    with pytest.raises(ConfigError, match="needs class labels"):
        gans.create(config, DataInfo("faces", (28, 28, 1), 0, (), 10))
    config.classifier.model = "resnet"
    with pytest.raises(ConfigError, match="unknown config.classifier.model"):
        gans.create(config, DataInfo("digits", (28, 28, 1), 10, tuple("0123456789"), 10))
    from ganjax import evaluators

    gan = gans.create(apply_variant(base_config("dcgan"), "tiny"), DataInfo("digits", (28, 28, 1), 10, tuple("0123456789"), 10))
    with pytest.raises(ConfigError, match="does not classify images"):
        evaluators.get("test_accuracy").check("test_accuracy", gan)


# --------------------------------------------------------------------------------------------
# Arms and statistics.
# --------------------------------------------------------------------------------------------


def test_parse_arms():
    arms = augment.parse_arms("real,real+classical+synthetic,synthetic,2x_real+classical", "0.25,0.5")
    assert [a.name for a in arms] == [
        "real", "real+classical+synthetic@0.25", "real+classical+synthetic@0.5", "synthetic",
        "2x_real+classical"]
    assert [(a.real_factor, a.classical, a.synthetic_fraction) for a in arms] == [
        (1, False, 0.0), (1, True, 0.25), (1, True, 0.5), (0, False, 1.0), (2, True, 0.0)]
    for bad in ("real+fancy", "real+2x_real", "classical", "real,real"):
        with pytest.raises(ConfigError):
            augment.parse_arms(bad, "0.5")
    with pytest.raises(ConfigError, match="ratios"):
        augment.parse_arms("real", "1.5")


def test_table_statistics_against_numpy():
    rng = np.random.default_rng(0)
    acc = {arm: {s: {"accuracy": float(v), "per_class": rng.uniform(size=3).tolist()}
                 for s, v in enumerate(rng.uniform(0.6, 0.9, size=3))} for arm in ("real+classical", "real+synthetic")}
    summary = augment.summarize(acc, "real+classical")
    t_975_2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom (tables)
    for arm, seeds in acc.items():
        v = np.array([seeds[s]["accuracy"] for s in range(3)])
        s = summary[arm]
        assert s["mean"] == pytest.approx(v.mean(), abs=1e-12)
        assert s["std"] == pytest.approx(np.sqrt(np.sum((v - v.mean()) ** 2) / 2), abs=1e-12)
        assert s["ci95"] == pytest.approx(t_975_2 * s["std"] / np.sqrt(3), rel=1e-9)
        np.testing.assert_allclose(s["per_class_mean"], np.mean([seeds[i]["per_class"] for i in range(3)], 0))
    d = np.array([acc["real+synthetic"][s]["accuracy"] - acc["real+classical"][s]["accuracy"] for s in range(3)])
    paired = summary["real+synthetic"]["vs_baseline"]
    assert paired["mean"] == pytest.approx(d.mean(), abs=1e-12)
    assert paired["ci95"] == pytest.approx(t_975_2 * d.std(ddof=1) / np.sqrt(3), rel=1e-9)
    assert paired["excludes_zero"] == bool(abs(d.mean()) > paired["ci95"])
    assert "vs_baseline" not in summary["real+classical"]


# --------------------------------------------------------------------------------------------
# The job, end to end.
# --------------------------------------------------------------------------------------------


def test_augment_job_on_the_digits_through_launch(repo_root, tmp_path):
    workdir = tmp_path / "augment"
    launch_ok(repo_root, "--config=configs/augment_mnist.py:tiny", f"--workdir={workdir}",
           "--config.jobs.augment.arms=real,real+classical,real+classical+synthetic,synthetic,2x_real+classical")
    report = json.loads((workdir / "augment.json").read_text())
    runs = report["runs"]["n3"]["simple"]
    assert set(runs) == {"real", "real+classical", "real+classical+synthetic", "synthetic", "2x_real+classical"}
    expected = {"real": (3, 0, 0.0), "real+classical": (3, 2, 0.0), "real+classical+synthetic": (3, 2, 0.5),
                "synthetic": (3, 0, 1.0), "2x_real+classical": (6, 2, 0.0)}
    budgets = set()
    for arm, seeds in runs.items():
        assert sorted(seeds) == ["0", "1"]
        for seed, r in seeds.items():
            recorded = json.loads(open(os.path.join(r["workdir"], "config.json")).read())
            budgets.add((recorded["train"]["num_steps"], recorded["data"]["batch_size"]))
            d = recorded["data"]
            assert (d["per_class"], d["shift"], d["synthetic_fraction"]) == expected[arm]
            assert recorded["seed"] == int(seed) and d["subset_seed"] == 0
        values = [seeds[s]["accuracy"] for s in ("0", "1")]
        s = report["summary"]["n3"]["simple"][arm]
        assert s["mean"] == pytest.approx(np.mean(values)) and s["std"] == pytest.approx(np.std(values, ddof=1))
    assert budgets == {(6, 16)}  # every arm: the same steps and batch
    generator = json.loads((workdir / "generators" / "n3_subset0" / "config.json").read_text())
    assert generator["data"]["per_class"] == 3 and generator["gan"]["name"] == "acgan"
    exported = json.loads((workdir / "synthetic" / "n3_subset0" / "synthesize.json").read_text())
    assert exported["num_images"] == 200 and exported["mode"] == "class"
    assert "| real+classical | " in (workdir / "augment.md").read_text()
    assert (workdir / "augment.png").stat().st_size > 1000


def test_augment_errors(tmp_path):
    config = load_config(None, "augment_mnist")
    config.jobs.augment.generator = ""
    with pytest.raises(ConfigError, match="need images"):
        augment.run(config, str(tmp_path / "a"))
    config.jobs.augment.synthetic = str(tmp_path)
    with pytest.raises(ConfigError, match="is neither a tfds dataset directory"):
        augment.run(config, str(tmp_path / "b"))
    config.jobs.augment.baseline = "nothing"
    with pytest.raises(ConfigError, match="baseline"):
        augment.run(config, str(tmp_path / "c"))


NEUTRAL, HAPPY = 6, 3


def test_augment_fer_with_translations_and_a_neutral_generator(repo_root, tmp_path):
    """Report 001's setup on a FER2013-format CSV: a CycleGAN (Neutral -> Happy) and a DCGAN on
    Neutral trained tiny; the augment job translates and samples them and adds them to the
    real training split."""
    manual = tmp_path / "manual"
    manual.mkdir()
    rng = np.random.default_rng(0)
    labels = [NEUTRAL] * 10 + [HAPPY] * 10 + [0] * 6 + [NEUTRAL, HAPPY, 0] * 2
    usages = ["Training"] * 26 + ["PublicTest"] * 6
    faces = rng.integers(0, 256, (len(labels), 48, 48), dtype=np.uint8)
    fer2013.write_csv(str(manual / "fer2013.csv"), faces, labels, usages)
    common = [f"--config.data.manual_dir={manual}", f"--config.data.data_dir={tmp_path / 'tfds'}",
              "--config.data.image_size=24", "--config.model.conv_impl=native"]
    launch_ok(repo_root, "--config=configs/cyclegan_fer.py:tiny", f"--workdir={tmp_path / 'cyclegan'}",
           "--config.train.num_steps=2", *common)
    launch_ok(repo_root, "--config=configs/dcgan_fer_neutral.py:tiny", f"--workdir={tmp_path / 'neutral'}",
           "--config.train.num_steps=2", *common)
    launch_ok(repo_root, "--config=configs/augment_fer.py:tiny", f"--workdir={tmp_path / 'augment'}",
           f"--config.jobs.augment.synthetic={tmp_path / 'cyclegan'},{tmp_path / 'neutral'}", *common[:3])
    report = json.loads((tmp_path / "augment" / "augment.json").read_text())
    assert report["class_names"][HAPPY] == "Happy" and report["num_test"] == 6
    translated = json.loads((tmp_path / "augment" / "synthetic" / "cyclegan" / "translated.json").read_text())
    assert translated["label"] == "Happy" and translated["num_images"] == 10  # every Neutral training face
    neutral = json.loads((tmp_path / "augment" / "synthetic" / "neutral" / "synthesize.json").read_text())
    assert neutral["class_names"][NEUTRAL] == "Neutral" and neutral["mode"] == "unconditional"
    assert neutral["counts"] == {"Neutral": {"images": 8, "drawn": 8, "kept_fraction": 1.0}}
    run = report["runs"]["all"]["simple"]["real+synthetic"]["0"]
    recorded = json.loads(open(os.path.join(run["workdir"], "config.json")).read())
    assert recorded["data"]["synthetic"].split(",") == [translated["tfds_dir"], neutral["tfds_dir"]]
    assert recorded["data"]["per_class"] == 0 and len(report["summary"]["all"]["simple"]) == 2
