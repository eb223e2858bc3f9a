"""The user's own images, root/<split>/<class>/*.png|jpg, through tfds.ImageFolder."""

import numpy as np
import pytest
from PIL import Image

from ganjax import config as config_lib
from ganjax import sharding
from ganjax.data import pipeline, stats
from ganjax.data.core import DatasetError

COLOURS = {"cats": (200, 0, 0), "dogs": (0, 0, 200), "owls": (0, 200, 0)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train: 5 cats, 3 dogs, 2 owls; test: 1 cat, 2 dogs. Sizes vary (and are not square);
    each image is its class colour in the centre, with a white border that a centre crop of
    the largest square keeps only on the long side."""
    root = tmp_path_factory.mktemp("images")
    counts = {("train", "cats"): 5, ("train", "dogs"): 3, ("train", "owls"): 2, ("test", "cats"): 1, ("test", "dogs"): 2}
    for (split, cls), n in counts.items():
        d = root / split / cls
        d.mkdir(parents=True)
        for i in range(n):
            h, w = 24 + 4 * i, 32 + 4 * i  # wider than tall
            img = np.full((h, w, 3), 255, np.uint8)
            img[:, (w - h) // 2 : (w - h) // 2 + h] = COLOURS[cls]
            Image.fromarray(img).save(d / f"{cls}{i}.{'png' if i % 2 else 'jpg'}")
    return root


def folder_config(root, **data):
    c = config_lib.base_config()
    c.data.name = "image_folder"
    c.data.folder = str(root)
    c.data.image_size = 16
    c.data.batch_size = 4
    for k, v in data.items():
        c.data[k] = v
    config_lib.validate(c)
    return c


def test_classes_splits_shapes_and_content(folder):
    c = folder_config(folder)
    images, labels, info = pipeline.load_arrays(c.data)
    assert info.class_names == ("cats", "dogs", "owls") and info.num_train_examples == 10
    assert images.shape == (10, 16, 16, 3)
    assert sorted(labels.tolist()) == [0] * 5 + [1] * 3 + [2] * 2
    # The centred square is the class colour everywhere (JPEG: approximately).
    colours = np.array([COLOURS[n] for n in info.class_names], np.float32)
    pixels = (images + 1) * 127.5
    np.testing.assert_allclose(pixels.mean(axis=(1, 2)), colours[labels], atol=12)
    _, test_labels, _ = pipeline.load_arrays(c.data, "test")
    assert sorted(test_labels.tolist()) == [0, 1, 1]


def test_grayscale_filter_and_batches(folder):
    c = folder_config(folder, channels=1, classes="owls,dogs", balance=True, flip=True)
    info, batches = pipeline.build_train_data(c, sharding.make_mesh(), n_micro=1)
    assert info.class_names == ("owls", "dogs") and info.class_counts == (2, 3)
    batch = next(batches)
    assert batch["image"].shape == (1, 4, 16, 16, 1)
    assert set(np.asarray(batch["label"]).ravel().tolist()) <= {0, 1}


def test_errors(folder, tmp_path):
    with pytest.raises(DatasetError, match="has no split 'validation'.*'test', 'train'"):
        pipeline.load_split(folder_config(folder, split="validation").data)
    with pytest.raises(DatasetError, match="does not exist"):
        pipeline.load_split(folder_config(tmp_path / "nowhere").data)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No images found"):
        pipeline.load_split(folder_config(tmp_path / "empty").data)
    with pytest.raises(config_lib.ConfigError, match="needs --config.data.folder"):
        folder_config("")
    # The test split has no owls: a filter keeping them leaves a class empty.
    with pytest.raises(DatasetError, match="Class 'owls' has no examples in split 'test'"):
        pipeline.load_split(folder_config(folder, classes="owls,cats").data, "test")


def test_stats_on_a_folder(folder, tmp_path, capsys):
    c = folder_config(folder, preview=3)
    result = stats.run(c, str(tmp_path))
    assert result["splits"] == {
        "train": {"cats": 5, "dogs": 3, "owls": 2},
        "test": {"cats": 1, "dogs": 2, "owls": 0},
    }
    assert "owls" in capsys.readouterr().out
    assert len(result["previews"]) == 3


def broken_files():
    """name -> bytes of image files that TensorFlow cannot decode."""
    import io

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)

    def encoded(fmt):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, fmt)
        return buffer.getvalue()

    png, jpg = encoded("PNG"), encoded("JPEG")
    return {
        "garbage": b"these bytes are no image" * 8,
        "empty": b"",
        "truncated_png": png[: len(png) // 2],
        "png_without_its_end": png[:-12],
        "truncated_jpg": jpg[: len(jpg) // 2],
        "tiff_named_png": encoded("TIFF"),
        "gif_named_png": encoded("GIF"),  # tf decodes GIF and WebP as [frames, H, W, C]
        "webp_named_jpg": encoded("WEBP"),
    }


@pytest.mark.parametrize("kind", sorted(broken_files()))
def test_corrupt_image_is_an_error_naming_the_file(tmp_path, kind):
    root = tmp_path / "images"
    for cls in ("cats", "dogs"):
        (root / "train" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((20, 24, 3), 60 * i, np.uint8)).save(root / "train" / cls / f"{i}.png")
    bad = root / "train" / "dogs" / ("bad.jpg" if "jpg" in kind else "bad.png")
    bad.write_bytes(broken_files()[kind])
    c = folder_config(root)
    for call in (lambda: pipeline.load_split(c.data), lambda: stats.run(c, str(tmp_path / "stats"))):
        with pytest.raises(DatasetError) as e:
            call()
        message = str(e.value)
        assert str(bad) in message and "\n" not in message
        assert "Delete or replace" in message
    bad.unlink()
    _, info = pipeline.load_split(c.data)
    assert info.num_train_examples == 4


def test_all_readable_formats_pass_the_check(tmp_path):
    """The files TensorFlow decodes are accepted, whatever their extension says."""
    root = tmp_path / "images"
    folder = root / "train" / "any"
    folder.mkdir(parents=True)
    pixels = np.full((20, 24, 3), 90, np.uint8)
    for name, fmt in (("a.png", "PNG"), ("b.jpg", "JPEG"), ("c.jpeg", "JPEG"), ("d.png", "BMP")):
        Image.fromarray(pixels).save(folder / name, fmt)
    with open(folder / "b.jpg", "ab") as f:
        f.write(b"trailing bytes after the JPEG end marker")
    images, _, info = pipeline.load_arrays(folder_config(root).data)
    assert info.num_train_examples == 4 and images.shape == (4, 16, 16, 3)
