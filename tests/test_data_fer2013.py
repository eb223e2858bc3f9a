"""The FER2013 tfds builder: the exact Kaggle CSV (and the folder layout) -> splits, labels, images;
every kind of malformed row is an error naming the line, unless skip_bad_rows asks to skip."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ganjax import config as config_lib
from ganjax.data import fer2013, pipeline
from ganjax.data.core import DatasetError

# 30 rows: row r (0-based) is a constant face of value 8 * r; emotions and usages below.
LABELS = [3] * 12 + [1] * 2 + [6] * 6 + [0, 1, 3, 6, 6] + [2, 3, 4, 5, 6]
USAGES = ["Training"] * 20 + ["PublicTest"] * 5 + ["PrivateTest"] * 5


def faces(n=30):
    return np.stack([np.full((48, 48), 8 * r, np.uint8) for r in range(n)])


def write_kaggle_csv(path, labels=LABELS, usages=USAGES):
    fer2013.write_csv(path, faces(len(labels)), labels, usages)


def data_config(tmp_path, manual, **overrides):
    c = config_lib.base_config()
    c.data.name = "fer2013"
    c.data.data_dir = str(tmp_path / "tfds")
    c.data.manual_dir = str(manual)
    for k, v in overrides.items():
        c.data[k] = v
    return c.data


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer")
    manual = root / "manual"
    manual.mkdir()
    write_kaggle_csv(str(manual / "fer2013.csv"))
    return root, manual


def test_csv_format_is_kaggle(tmp_path):
    path = tmp_path / "fer2013.csv"
    write_kaggle_csv(str(path))
    lines = path.read_text().splitlines()
    assert lines[0] == "emotion,pixels,Usage"
    emotion, pixels, usage = lines[2].split(",")
    assert (emotion, usage) == ("3", "Training")
    assert len(pixels.split(" ")) == 2304 and set(pixels.split(" ")) == {"8"}
    assert len(lines) == 31


def test_builder_splits_labels_and_images(prepared):
    root, manual = prepared
    dc = data_config(root, manual)
    assert not tfds.builder("fer2013", data_dir=dc.data_dir).is_prepared()
    ds, info = pipeline.load_split(dc)  # prepares from the manual dir
    builder = tfds.builder("fer2013", data_dir=dc.data_dir)
    assert builder.is_prepared()
    assert info.class_names == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
    assert info.num_classes == 7 and info.image_shape == (48, 48, 1)
    splits = builder.info.splits
    assert {s: splits[s].num_examples for s in splits} == {
        "train": 20, "public_test": 5, "private_test": 5,
    }
    assert builder.info.features["label"].names[3] == "Happy"
    for split, rows in (("train", range(20)), ("public_test", range(20, 25)), ("private_test", range(25, 30))):
        images, labels, _ = pipeline.load_arrays(dc, split)
        assert images.shape == (len(rows), 48, 48, 1) and images.dtype == np.float32
        assert images.min() >= -1.0 and images.max() <= 1.0
        # Each face is constant 8 * row: recover the row and check its label and usage.
        got_rows = np.round((images[:, 0, 0, 0] + 1.0) * 127.5 / 8).astype(int)
        assert np.ptp(images.reshape(len(rows), -1), axis=1).max() == 0
        assert sorted(got_rows.tolist()) == list(rows)
        np.testing.assert_array_equal(labels, np.asarray(LABELS)[got_rows])
    assert builder.info.metadata["skipped_rows"] == 0


def test_missing_manual_file_names_path_and_download(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    with pytest.raises(DatasetError) as e:
        pipeline.load_split(data_config(tmp_path, manual))
    message = str(e.value)
    assert os.path.join(str(manual), "fer2013.csv") in message
    assert "kaggle.com" in message and "fer2013.tar.gz" in message
    assert not tfds.builder("fer2013", data_dir=str(tmp_path / "tfds")).is_prepared()


BAD_ROWS = [
    # (row index to break, replacement line, expected message part)
    (4, "3," + " ".join(["7"] * 2303) + ",Training", r"line 6 \(data row 5\): pixels has 2303 values, expected 2304"),
    (4, "3," + " ".join(["7"] * 100 + ["x7"] + ["7"] * 2203) + ",Training", r"line 6 .*pixel 100 is 'x7', not an integer"),
    (4, "3," + " ".join(["7"] * 10 + ["256"] + ["7"] * 2293) + ",Training", r"line 6 .*pixel 10 is 256, outside 0-255"),
    (9, "7," + " ".join(["7"] * 2304) + ",Training", r"line 11 \(data row 10\): emotion 7 is outside 0-6"),
    (9, "-1," + " ".join(["7"] * 2304) + ",Training", r"line 11 .*emotion -1 is outside 0-6"),
    (9, "happy," + " ".join(["7"] * 2304) + ",Training", r"line 11 .*emotion 'happy' is not an integer"),
    (27, "3," + " ".join(["7"] * 2304) + ",Validation", r"line 29 .*Usage 'Validation' is not one of Training, PublicTest, PrivateTest"),
]


@pytest.mark.parametrize("row,line,expected", BAD_ROWS)
def test_bad_row_is_an_error_naming_the_line(tmp_path, row, line, expected):
    manual = tmp_path / "manual"
    manual.mkdir()
    write_kaggle_csv(str(manual / "fer2013.csv"))
    lines = (manual / "fer2013.csv").read_text().splitlines()
    lines[row + 1] = line
    (manual / "fer2013.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=expected) as e:
        pipeline.load_split(data_config(tmp_path, manual))
    assert "skip_bad_rows=True" in str(e.value)
    assert not tfds.builder("fer2013", data_dir=str(tmp_path / "tfds")).is_prepared()


def test_bad_header_is_an_error(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "fer2013.csv").write_text("label,image\n3,1 2 3\n")
    with pytest.raises(DatasetError, match="line 1.*emotion,pixels,Usage"):
        pipeline.load_split(data_config(tmp_path, manual))


def test_skip_bad_rows_skips_and_reports_the_count(tmp_path, capsys):
    manual = tmp_path / "manual"
    manual.mkdir()
    write_kaggle_csv(str(manual / "fer2013.csv"))
    lines = (manual / "fer2013.csv").read_text().splitlines()
    lines[1] = "3," + " ".join(["1"] * 5) + ",Training"  # too few pixels (a training row)
    lines[30] = "9," + " ".join(["1"] * 2304) + ",PrivateTest"  # bad label (a private_test row)
    (manual / "fer2013.csv").write_text("\n".join(lines) + "\n")
    dc = data_config(tmp_path, manual, skip_bad_rows=True)
    _, info = pipeline.load_split(dc)
    assert info.num_train_examples == 19
    builder = tfds.builder("fer2013", data_dir=dc.data_dir)
    assert builder.info.splits["private_test"].num_examples == 4
    assert builder.info.metadata["skipped_rows"] == 2
    assert "skipped 2 malformed rows" in capsys.readouterr().out


def test_folder_layout(tmp_path):
    from PIL import Image

    manual = tmp_path / "manual"
    counts = {("train", "happy"): 3, ("train", "Neutral"): 2, ("test", "happy"): 1, ("test", "sad"): 2}
    for (split, emotion), n in counts.items():
        d = manual / split / emotion
        d.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((48, 48), 10 * i, np.uint8)).save(d / f"im{i}.png")
    dc = data_config(tmp_path, manual)
    images, labels, info = pipeline.load_arrays(dc, "train")
    assert info.class_names[3] == "Happy" and images.shape == (5, 48, 48, 1)
    assert sorted(labels.tolist()) == [3, 3, 3, 6, 6]
    _, test_labels, _ = pipeline.load_arrays(dc, "test")
    assert sorted(test_labels.tolist()) == [3, 4, 4]
    with pytest.raises(DatasetError, match="no split 'public_test'.*test.*train"):
        pipeline.load_split(dc, "public_test")


def test_folder_layout_bad_image_and_unknown_emotion(tmp_path):
    from PIL import Image

    manual = tmp_path / "manual"
    (manual / "train" / "happy").mkdir(parents=True)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(manual / "train" / "happy" / "small.png")
    with pytest.raises(DatasetError, match=r"small.png: is 48x40, expected 48x48"):
        pipeline.load_split(data_config(tmp_path, manual))
    (manual / "train" / "happy" / "small.png").unlink()
    (manual / "train" / "joyful").mkdir()
    with pytest.raises(DatasetError, match="unknown emotion folder 'joyful'"):
        pipeline.load_split(data_config(tmp_path, manual))


BOM = b"\xef\xbb\xbf"


def test_csv_with_a_utf8_bom(tmp_path):
    """Windows tools write fer2013.csv with a UTF-8 byte-order mark before the header."""
    manual = tmp_path / "manual"
    manual.mkdir()
    path = manual / "fer2013.csv"
    write_kaggle_csv(str(path))
    path.write_bytes(BOM + path.read_bytes())
    dc = data_config(tmp_path, manual)
    images, labels, info = pipeline.load_arrays(dc)
    assert info.num_train_examples == 20 and images.shape == (20, 48, 48, 1)
    np.testing.assert_array_equal(labels, np.asarray(LABELS)[rows_of(images)])
    splits = tfds.builder("fer2013", data_dir=dc.data_dir).info.splits
    assert {s: splits[s].num_examples for s in splits} == {"train": 20, "public_test": 5, "private_test": 5}


def rows_of(images):
    """Row index of each constant face 8 * row in float [-1, 1] images [N, 48, 48, 1]."""
    return np.round((np.asarray(images)[:, 0, 0, 0] + 1.0) * 127.5 / 8).astype(int)


def write_rows(manual, labels):
    """A Kaggle CSV of len(labels) training faces (face r constant 8 * r) in `manual`."""
    manual.mkdir(parents=True, exist_ok=True)
    write_kaggle_csv(str(manual / "fer2013.csv"), labels, ["Training"] * len(labels))
    return manual


def prepared_again(capsys) -> bool:
    return "preparing it again" in capsys.readouterr().out


def test_a_changed_source_csv_is_prepared_again(tmp_path, capsys):
    first = write_rows(tmp_path / "first", [3] * 8)
    second = write_rows(tmp_path / "second", [6] * 12 + [3] * 12)
    _, info = pipeline.load_split(data_config(tmp_path, first))
    assert info.num_train_examples == 8
    capsys.readouterr()
    # Same data_dir, another fer2013.csv: the dataset is prepared again from it.
    dc = data_config(tmp_path, second)
    images, labels, info = pipeline.load_arrays(dc)
    out = capsys.readouterr().out
    assert info.num_train_examples == 24 and images.shape[0] == 24
    assert str(first / "fer2013.csv") in out and str(second / "fer2013.csv") in out
    assert "preparing it again" in out
    assert sorted(labels.tolist()) == [3] * 12 + [6] * 12
    # The same file again, or an identical copy elsewhere: reused, not prepared again.
    assert pipeline.load_split(dc)[1].num_train_examples == 24
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "fer2013.csv").write_bytes((second / "fer2013.csv").read_bytes())
    assert pipeline.load_split(data_config(tmp_path, copy))[1].num_train_examples == 24
    os.utime(second / "fer2013.csv", ns=(10**18, 10**18))  # touched, content unchanged
    assert pipeline.load_split(dc)[1].num_train_examples == 24
    assert not prepared_again(capsys)
    # Edited in place (same size, other labels): prepared again.
    write_rows(second, [0] * 12 + [5] * 12)
    _, labels, _ = pipeline.load_arrays(dc)
    assert sorted(labels.tolist()) == [0] * 12 + [5] * 12
    assert prepared_again(capsys)
    # No source in the manual dir any more (a prepared dataset copied elsewhere): reused.
    _, info = pipeline.load_split(data_config(tmp_path, tmp_path / "gone"))
    assert info.num_train_examples == 24 and not prepared_again(capsys)


def save_faces(folder, names):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((48, 48), 10 * i, np.uint8)).save(folder / name)


def test_a_changed_source_folder_is_prepared_again(tmp_path, capsys):
    manual = tmp_path / "manual"
    save_faces(manual / "train" / "happy", ["a.png", "b.png"])
    dc = data_config(tmp_path, manual)
    assert pipeline.load_split(dc)[1].num_train_examples == 2
    assert pipeline.load_split(dc)[1].num_train_examples == 2
    assert not prepared_again(capsys)
    save_faces(manual / "train" / "sad", ["c.png"])
    _, labels, info = pipeline.load_arrays(dc)
    assert info.num_train_examples == 3 and sorted(labels.tolist()) == [3, 3, 4]
    assert prepared_again(capsys)


def test_folder_layout_corrupt_image_names_the_file(tmp_path):
    from ganjax.data import stats

    manual = tmp_path / "manual"
    save_faces(manual / "train" / "happy", ["a.png", "b.png"])
    (manual / "train" / "happy" / "bad.png").write_bytes(b"not a png" * 20)
    c = config_lib.base_config()
    c.data = data_config(tmp_path, manual)
    for call in (lambda: pipeline.load_split(c.data), lambda: stats.run(c, str(tmp_path / "stats"))):
        with pytest.raises(DatasetError) as e:
            call()
        message = str(e.value)
        assert str(manual / "train" / "happy" / "bad.png") in message and "\n" not in message
        assert "delete that file" in message and "skip_bad_rows=True" in message
    c.data.skip_bad_rows = True
    assert pipeline.load_split(c.data)[1].num_train_examples == 2
