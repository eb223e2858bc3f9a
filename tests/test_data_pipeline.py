"""The training pipeline on a small FER2013 CSV: class filtering and remapping, class-balanced
sampling, augmentation, exact resume, two-domain (CycleGAN) batches, errors before training,
and the dataset_stats job."""

import json
import multiprocessing
import os

import numpy as np
import pytest
from PIL import Image

from ganjax import config as config_lib
from ganjax import sharding
from ganjax.data import fer2013, pipeline, stats
from ganjax.data.core import DatasetError

# 30 rows; row r is a constant face of value 8 * r, so a batch element tells its row.
LABELS = [3] * 12 + [1] * 2 + [6] * 6 + [0, 1, 3, 6, 6] + [2, 3, 4, 5, 6]
USAGES = ["Training"] * 20 + ["PublicTest"] * 5 + ["PrivateTest"] * 5
HAPPY, DISGUST, NEUTRAL = 3, 1, 6


@pytest.fixture(scope="module")
def fer_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer_pipeline")
    (root / "manual").mkdir()
    images = np.stack([np.full((48, 48), 8 * r, np.uint8) for r in range(30)])
    fer2013.write_csv(str(root / "manual" / "fer2013.csv"), images, LABELS, USAGES)
    return root


@pytest.fixture(scope="module")
def mesh():
    return sharding.make_mesh()


def make_config(root, **data):
    c = config_lib.base_config()
    c.seed = 7
    c.data.name = "fer2013"
    c.data.data_dir = str(root / "tfds")
    c.data.manual_dir = str(root / "manual")
    c.data.batch_size = 8
    c.data.shuffle_buffer = 64
    for k, v in data.items():
        c.data[k] = v
    config_lib.validate(c)
    return c


def rows_of(images):
    """Row index of each (constant) face in a batch of [..., 48, 48, 1] images in [-1, 1]."""
    images = np.asarray(images)
    return np.round((images[..., 0, 0, 0] + 1.0) * 127.5 / 8).astype(int)


def stream_rows(config, n, skip=0, **kw):
    ds, info = pipeline.example_stream(config.data, seed=config.seed, skip=skip, **kw)
    out = [(rows_of(b["image"]), b["label"]) for b in ds.take(n).batch(n).as_numpy_iterator()]
    return out[0][0], out[0][1], info


def test_class_mapping_parses_names_indices_and_merges():
    names = fer2013.EMOTIONS
    lookup, new = pipeline.class_mapping("neutral, Happy", names)
    assert new == ("Neutral", "Happy")
    assert lookup.tolist() == [-1, -1, -1, 1, -1, -1, 0]
    lookup, new = pipeline.class_mapping("0+1,3", names)
    assert new == ("Angry+Disgust", "Happy") and lookup.tolist() == [0, 0, -1, 1, -1, -1, -1]
    with pytest.raises(DatasetError, match="unknown class 'Joy'.*3=Happy"):
        pipeline.class_mapping("Joy,Happy", names)
    with pytest.raises(DatasetError, match="names class 'Happy' twice"):
        pipeline.class_mapping("Happy,3", names)
    assert pipeline.parse_domain("Neutral", "fer2013") == ("fer2013", "Neutral")
    assert pipeline.parse_domain("image_folder:cats", "fer2013") == ("image_folder", "cats")


def test_filter_and_remap(fer_dirs):
    c = make_config(fer_dirs, classes="Neutral,Happy")
    images, labels, info = pipeline.load_arrays(c.data)
    assert info.class_names == ("Neutral", "Happy") and info.num_classes == 2
    assert info.num_train_examples == 18 and info.class_counts == (6, 12)
    rows = rows_of(images)
    original = np.asarray(LABELS)[rows]
    assert set(original.tolist()) == {HAPPY, NEUTRAL}
    np.testing.assert_array_equal(labels, np.where(original == NEUTRAL, 0, 1))


def test_filter_leaving_a_class_empty_is_an_error(fer_dirs):
    c = make_config(fer_dirs, classes="Neutral,Fear", split="public_test")
    with pytest.raises(DatasetError, match="Class 'Fear' has no examples in split 'public_test'.*Drop it"):
        pipeline.load_split(c.data)


def test_batches_shapes_sharding_and_labels(fer_dirs, mesh):
    c = make_config(fer_dirs, classes="Disgust,Happy,Neutral")
    info, batches = pipeline.build_train_data(c, mesh, n_micro=2, start_step=0)
    batch = next(batches)
    assert batch["image"].shape == (2, 8, 48, 48, 1) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (2, 8) and batch["label"].dtype == np.int32
    assert batch["image"].sharding.spec == sharding.batch_sharding(mesh, 1).spec
    assert len(batch["image"].sharding.device_set) == 4
    images = np.asarray(batch["image"])
    assert images.min() >= -1.0 and images.max() <= 1.0
    lookup = {DISGUST: 0, HAPPY: 1, NEUTRAL: 2}
    expected = [lookup[LABELS[r]] for r in rows_of(images).ravel()]
    np.testing.assert_array_equal(np.asarray(batch["label"]).ravel(), expected)


def test_batch_size_that_does_not_divide_is_an_error(fer_dirs, mesh):
    c = make_config(fer_dirs, batch_size=6)
    with pytest.raises((ValueError, DatasetError), match="multiple of 4"):
        pipeline.build_train_data(c, mesh)


def test_unbalanced_stream_follows_the_data_and_covers_each_epoch(fer_dirs):
    c = make_config(fer_dirs, classes="Disgust,Happy,Neutral")
    rows, labels, _ = stream_rows(c, 200)
    # Each epoch (20 training rows) is a permutation of the training rows.
    for e in range(10):
        assert sorted(rows[20 * e : 20 * (e + 1)].tolist()) == list(range(20))
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 200, [0.1, 0.6, 0.3])


def test_balanced_sampling(fer_dirs):
    c = make_config(fer_dirs, classes="Disgust,Happy,Neutral", balance=True)
    rows, labels, info = stream_rows(c, 3000)
    freq = np.bincount(labels, minlength=3) / 3000
    assert np.all(np.abs(freq - 1 / 3) < 0.04), freq  # vs 0.1 / 0.6 / 0.3 in the data
    # The labels still belong to the images, and every Disgust face is used.
    np.testing.assert_array_equal(labels, [{DISGUST: 0, HAPPY: 1, NEUTRAL: 2}[LABELS[r]] for r in rows])
    assert sorted(set(rows[labels == 0].tolist())) == [12, 13]
    # The class at each position is the stateless draw that resume relies on.
    seed = pipeline._derive_seed(c.seed, 0xBA1)
    np.testing.assert_array_equal(labels, pipeline.class_choices(seed, 3, 0, 3000))


@pytest.mark.parametrize("data", [
    dict(classes="Disgust,Happy,Neutral", balance=True, flip=True, rotate=15.0, jitter=4),
    dict(),
])
def test_resume_sees_the_same_batches(fer_dirs, mesh, data):
    c = make_config(fer_dirs, **data)
    _, full = pipeline.build_train_data(c, mesh, n_micro=2, start_step=0)
    full = [next(full) for _ in range(6)]
    _, resumed = pipeline.build_train_data(c, mesh, n_micro=2, start_step=4)
    for step in (4, 5):
        got = next(resumed)
        for key in ("image", "label"):
            np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(full[step][key]))
    # A different seed gives a different order.
    c.seed = 8
    _, other = pipeline.build_train_data(c, mesh, n_micro=2, start_step=0)
    other = np.concatenate([np.asarray(next(other)["image"]) for _ in range(2)])
    assert not np.array_equal(other, np.concatenate([np.asarray(b["image"]) for b in full[:2]]))


def test_resume_far_into_a_balanced_stream(fer_dirs):
    c = make_config(fer_dirs, classes="Disgust,Happy,Neutral", balance=True)
    skip = 2 * pipeline.CHOICE_BLOCK + 123  # crosses choice blocks and many class epochs
    rows, labels, _ = stream_rows(c, skip + 50)
    rows2, labels2, _ = stream_rows(c, 50, skip=skip)
    np.testing.assert_array_equal(rows2, rows[skip:])
    np.testing.assert_array_equal(labels2, labels[skip:])


def test_augmentation_is_deterministic_and_does_what_it_says(tmp_path):
    c = config_lib.base_config()
    c.data.flip = True
    half = np.concatenate([np.full((8, 4, 1), -1.0), np.full((8, 4, 1), 1.0)], axis=1).astype(np.float32)
    flipped = [
        float(pipeline.augment(half, i, c.data, seed=3).numpy()[0, 0, 0]) > 0 for i in range(400)
    ]
    assert 0.4 < np.mean(flipped) < 0.6
    again = [float(pipeline.augment(half, i, c.data, seed=3).numpy()[0, 0, 0]) > 0 for i in range(400)]
    assert flipped == again
    c.data.flip, c.data.rotate, c.data.jitter = False, 20.0, 6
    ramp = np.tile(np.linspace(-1, 1, 16, dtype=np.float32)[None, :, None], (16, 1, 1))
    outs = [pipeline.augment(ramp, i, c.data, seed=3).numpy() for i in range(6)]
    assert all(o.shape == (16, 16, 1) and o.min() >= -1 and o.max() <= 1 for o in outs)
    assert not np.allclose(outs[0], ramp) and not np.allclose(outs[0], outs[1])
    np.testing.assert_array_equal(outs[2], pipeline.augment(ramp, 2, c.data, seed=3).numpy())


def test_two_domain_batches_pair_the_right_classes(fer_dirs, mesh):
    c = make_config(fer_dirs, domain_a="Neutral", domain_b="Happy+Disgust", flip=True)
    info_a, info_b, batches = pipeline.build_two_domain_data(c, mesh, n_micro=2, start_step=0)
    assert info_a.class_names == ("Neutral",) and info_a.num_train_examples == 6
    assert info_b.class_names == ("Happy+Disgust",) and info_b.num_train_examples == 14
    seen_a, seen_b = set(), set()
    first = [next(batches) for _ in range(3)]
    for batch in first:
        assert set(batch) == {"a", "b", "label_a", "label_b"}
        assert batch["a"].shape == batch["b"].shape == (2, 8, 48, 48, 1)
        assert batch["b"].sharding.spec == sharding.batch_sharding(mesh, 1).spec
        seen_a |= {LABELS[r] for r in rows_of(batch["a"]).ravel()}
        seen_b |= {LABELS[r] for r in rows_of(batch["b"]).ravel()}
        assert np.all(np.asarray(batch["label_a"]) == 0) and np.all(np.asarray(batch["label_b"]) == 0)
    assert seen_a == {NEUTRAL} and seen_b == {HAPPY, DISGUST}
    # Resume: step 2 from a fresh pipeline equals step 2 of the first.
    _, _, resumed = pipeline.build_two_domain_data(c, mesh, n_micro=2, start_step=2)
    got = next(resumed)
    for key in ("a", "b"):
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(first[2][key]))


def test_two_domain_errors(fer_dirs, mesh, tmp_path):
    c = make_config(fer_dirs, domain_a="Neutral", domain_b="Fear", split="public_test")
    with pytest.raises(DatasetError, match=r"Domain b \(config.data.domain_b='Fear'\) has no examples in split 'public_test'"):
        pipeline.build_two_domain_data(c, mesh)
    c = make_config(fer_dirs)
    with pytest.raises(DatasetError, match="needs both --config.data.domain_a and --config.data.domain_b"):
        pipeline.build_two_domain_data(c, mesh)
    with pytest.raises(config_lib.ConfigError, match="domain_a and config.data.domain_b"):
        make_config(fer_dirs, domain_a="Neutral")
    # A second dataset with another image shape: a clear error naming the fix.
    folder = tmp_path / "faces" / "train" / "smile"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((32, 32, 3), 50 * i, np.uint8)).save(folder / f"{i}.png")
    c = make_config(fer_dirs, domain_a="Neutral", domain_b="image_folder:smile", folder=str(tmp_path / "faces"))
    with pytest.raises(DatasetError, match=r"different image shapes.*\(48, 48, 1\).*\(32, 32, 3\).*image_size"):
        pipeline.build_two_domain_data(c, mesh)
    c.data.image_size, c.data.channels = 48, 1
    info_a, info_b, batches = pipeline.build_two_domain_data(c, mesh)
    assert info_b.class_names == ("smile",) and next(batches)["b"].shape == (1, 8, 48, 48, 1)


def test_dataset_stats_job(fer_dirs, tmp_path, capsys):
    c = make_config(fer_dirs)
    c.job = "dataset_stats"
    c.data.preview = 4
    result = stats.run(c, str(tmp_path / "stats"))
    out = capsys.readouterr().out
    assert result["splits"]["train"] == {
        "Angry": 0, "Disgust": 2, "Fear": 0, "Happy": 12, "Sad": 0, "Surprise": 0, "Neutral": 6,
    }
    assert result["splits"]["public_test"]["Neutral"] == 2
    assert result["splits"]["private_test"]["Sad"] == 1
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("Class"))
    assert header.split() == ["Class", "train", "public_test", "private_test", "total", "%"]
    happy = next(line for line in lines if line.startswith("Happy"))
    assert happy.split() == ["Happy", "12", "1", "1", "14", "46.7%"]
    assert next(line for line in lines if line.startswith("Total")).split()[1:5] == ["20", "5", "5", "30"]
    assert "malformed rows skipped when it was prepared: 0" in out
    # One preview grid per class: Happy has 12 training faces -> 4 shown in a 4-wide grid.
    happy_png = tmp_path / "stats" / "preview_train_3_Happy.png"
    assert Image.open(happy_png).size == (4 * 50 + 2, 50 + 2)
    assert len([f for f in os.listdir(tmp_path / "stats") if f.endswith(".png")]) == 7
    with open(tmp_path / "stats" / "class_counts.json") as f:
        assert json.load(f)["splits"]["train"]["Happy"] == 12


def test_dataset_stats_config(repo_root):
    from configs import dataset_stats

    c = dataset_stats.get_config()
    assert c.job == "dataset_stats" and c.name == "dataset_stats"
    config_lib.validate(c)
    assert dataset_stats.get_config("fer2013").data.name == "fer2013"


def test_offline_digits_through_the_same_code(mesh):
    c = config_lib.base_config()
    c.data.batch_size = 8
    info, batches = pipeline.build_train_data(c, mesh, n_micro=1, start_step=3)
    assert info.name == "mnist_offline" and info.num_classes == 10 and info.num_train_examples == 4500
    batch = next(batches)
    assert batch["image"].shape == (1, 8, 28, 28, 1)
    # Unfiltered, the order is the backbone's: epoch e of the file-order split shuffled with
    # seed (seed, e), so runs started before the new features resume unchanged.
    ds, _ = pipeline.load_split(c.data)
    old = pipeline.deterministic_stream(ds, seed=c.seed, shuffle_buffer=c.data.shuffle_buffer, skip=24)
    expected = next(old.batch(8).as_numpy_iterator())
    np.testing.assert_array_equal(np.asarray(batch["label"])[0], expected["label"])
    np.testing.assert_array_equal(np.asarray(batch["image"])[0], expected["image"].astype(np.float32) / np.float32(127.5) - np.float32(1.0))
    c.data.classes = "3,8"
    _, labels, info = pipeline.load_arrays(c.data)
    assert info.class_names == ("3", "8") and info.class_counts == (450, 450)
    assert np.bincount(labels).tolist() == [450, 450]


def _count_offline_digits(data_dir, barrier, results):
    """Child process of the test below: open the offline digits in `data_dir` once every child
    is ready, and report the number of training examples or the error."""
    from ganjax.config import base_config
    from ganjax.data import pipeline as child_pipeline

    c = base_config()
    c.data.data_dir = data_dir
    barrier.wait()
    try:
        _, info = child_pipeline.load_split(c.data)
        results.put(("ok", info.num_train_examples))
    except BaseException as e:  # reported to the parent, which asserts on it
        results.put(("error", f"{type(e).__name__}: {e}"))


def test_two_jobs_preparing_one_fresh_data_dir_at_once(tmp_path):
    """Two processes opening a dataset that is not yet prepared, at the same moment: one prepares
    it (holding `<data_dir>/mnist_offline/.prepare.lock`), the other waits and reads it. Without
    the lock the second failed renaming its copy onto the first's (FileExistsError)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    children = [ctx.Process(target=_count_offline_digits, args=(str(tmp_path), barrier, results))
                for _ in range(2)]
    for child in children:
        child.start()
    barrier.wait(timeout=120)
    outcomes = [results.get(timeout=300) for _ in children]
    for child in children:
        child.join(timeout=60)
    assert outcomes == [("ok", 4500), ("ok", 4500)], outcomes
    assert (tmp_path / "mnist_offline" / ".prepare.lock").exists()
    assert not [p.name for p in (tmp_path / "mnist_offline").iterdir() if "incomplete" in p.name]
