"""CelebA through the real tfds `celeb_a` builder, its data faked by `tfds.testing.mock_data`:
centre crop + resize (+ grayscale), the 40 attributes as a vector, an attribute as class label,
attribute domains, and the errors for a dataset that is not prepared."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from ganjax import config as config_lib
from ganjax import sharding
from ganjax.data import pipeline, sources
from ganjax.data.core import DatasetError

N = 12


def fake_celeb_a(self, split, decoders=None, read_config=None, shuffle_files=False):
    """12 faces 218x178x3: the centred 178x178 square is 100 + i, the 20-row bands above and
    below are 255 (a centre crop removes them); Smiling = i % 3 == 0, Male = i < 4."""
    del split, decoders, read_config, shuffle_files
    images = np.full((N, 218, 178, 3), 255, np.uint8)
    for i in range(N):
        images[i, 20:198] = 100 + i
    names = list(self.info.features["attributes"].keys())
    attrs = {k: np.zeros(N, bool) for k in names}
    attrs["Smiling"] = np.arange(N) % 3 == 0
    attrs["Male"] = np.arange(N) < 4
    return tf.data.Dataset.from_tensor_slices({
        "image": images,
        "attributes": attrs,
        "landmarks": {k: np.zeros(N, np.int64) for k in self.info.features["landmarks"].keys()},
        "identity": {"Identity_No": np.arange(N, dtype=np.int64)},
    })


@pytest.fixture
def mocked():
    with tfds.testing.mock_data(as_dataset_fn=fake_celeb_a, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


def celeb_config(**data):
    c = config_lib.base_config()
    c.data.name = "celeb_a"
    c.data.download = True  # under mock_data download_and_prepare is a no-op
    c.data.batch_size = 4
    for k, v in data.items():
        c.data[k] = v
    config_lib.validate(c)
    return c


def test_crop_resize_and_attributes(mocked):
    c = celeb_config(image_size=32)
    images, labels, info = pipeline.load_arrays(c.data)
    assert info.image_shape == (32, 32, 3) and images.shape == (N, 32, 32, 3)
    assert info.num_classes == 0 and info.num_train_examples == N
    assert len(info.attribute_names) == 40 and info.attribute_names[0] == "5_o_Clock_Shadow"
    # The centre crop drops the white bands: every pixel is the face value 100 + i.
    values = np.round((images + 1) * 127.5)
    np.testing.assert_array_equal(values.min(axis=(1, 2, 3)), values.max(axis=(1, 2, 3)))
    assert sorted(values[:, 0, 0, 0].tolist()) == [100 + i for i in range(N)]

    mesh = sharding.make_mesh()
    c = celeb_config(image_size=64, channels=1)
    info, batches = pipeline.build_train_data(c, mesh, n_micro=1)
    batch = next(batches)
    assert info.image_shape == (64, 64, 1)
    assert batch["image"].shape == (1, 4, 64, 64, 1)
    assert batch["attributes"].shape == (1, 4, 40) and batch["attributes"].dtype == np.float32
    attrs = np.asarray(batch["attributes"])[0]
    face = np.round((np.asarray(batch["image"])[0, :, 0, 0, 0] + 1) * 127.5).astype(int) - 100
    smiling = info.attribute_names.index("Smiling")
    np.testing.assert_array_equal(attrs[:, smiling], (face % 3 == 0).astype(np.float32))
    assert attrs.sum(1).max() <= 2  # only Smiling and Male are ever set


def test_grayscale_28_as_in_report_003(mocked):
    c = celeb_config(image_size=28, channels=1, center_crop=178)
    images, _, info = pipeline.load_arrays(c.data)
    assert images.shape == (N, 28, 28, 1)
    np.testing.assert_allclose(images[:, 5, 5, 0], images[:, 20, 20, 0])


def test_attribute_as_label_filter_and_domains(mocked):
    c = celeb_config(image_size=32, label_attribute="smiling", classes="Smiling")
    _, labels, info = pipeline.load_arrays(c.data)
    assert info.class_names == ("Smiling",) and info.class_counts == (4,)
    assert labels.tolist() == [0] * 4
    c = celeb_config(image_size=32, label_attribute="Smiling", balance=True)
    _, info = pipeline.load_split(c.data)
    assert info.class_names == ("not_Smiling", "Smiling") and info.class_counts == (8, 4)
    c = celeb_config(image_size=32, label_attribute="Smiling", domain_a="not_Smiling", domain_b="Smiling")
    info_a, info_b, batches = pipeline.build_two_domain_data(c, sharding.make_mesh())
    batch = next(batches)
    assert info_a.num_train_examples == 8 and info_b.num_train_examples == 4
    faces_b = np.round((np.asarray(batch["b"])[0, :, 0, 0, 0] + 1) * 127.5).astype(int) - 100
    faces_a = np.round((np.asarray(batch["a"])[0, :, 0, 0, 0] + 1) * 127.5).astype(int) - 100
    assert np.all(faces_b % 3 == 0) and np.all(faces_a % 3 != 0)
    with pytest.raises(DatasetError, match="no attribute 'Happy'.*Smiling"):
        pipeline.load_split(celeb_config(label_attribute="Happy").data)
    with pytest.raises(DatasetError, match="no class labels.*label_attribute"):
        pipeline.load_split(celeb_config(classes="Smiling").data)


def test_not_prepared_names_the_manual_files(tmp_path):
    c = celeb_config(download=False, data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"))
    with pytest.raises(DatasetError) as e:
        pipeline.load_split(c.data)
    message = str(e.value)
    assert "not prepared" in message and "download=True" in message
    for name in sources.CELEB_A_FILES:
        assert name in message
    assert str(tmp_path / "manual") in message
    # Some manual files but not all: name the missing ones.
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "img_align_celeba.zip").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"not \[.*'list_eval_partition.txt'.*'identity_CelebA.txt'\]"):
        pipeline.load_split(c.data)


def test_manual_files_prepare_without_download(tmp_path, mocked):
    manual = tmp_path / "manual"
    manual.mkdir()
    for name in sources.CELEB_A_FILES:
        (manual / name).write_bytes(b"")
    c = celeb_config(download=False, manual_dir=str(manual), image_size=32)
    _, info = pipeline.load_split(c.data)  # mock: prepare is a no-op, reading gives the fakes
    assert info.image_shape == (32, 32, 3)


def test_stats_lists_attribute_positives(mocked, tmp_path, capsys):
    from ganjax.data import stats

    c = celeb_config(image_size=32, preview=5)
    result = stats.run(c, str(tmp_path))
    train = result["splits"]["train"]
    assert train["examples"] == N and train["Smiling"] == 4 and train["Male"] == 4 and train["Young"] == 0
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("Smiling")).split()[1] == "4"
    assert len(result["previews"]) == 1  # no classes: one grid
