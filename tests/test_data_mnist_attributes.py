"""`mnist_offline_attributes`: the offline digits with four attributes derived from the digit."""

import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import sharding
from ganjax.data import mnist_offline, pipeline, sources
from ganjax.data.core import DatasetError

NAME = "mnist_offline_attributes"


def make_config(**data):
    c = config_lib.base_config()
    c.data.name = NAME
    c.data.batch_size = 8
    c.data.shuffle_buffer = 64
    for k, v in data.items():
        c.data[k] = v
    config_lib.validate(c)
    return c


def test_the_table():
    assert mnist_offline.ATTRIBUTE_NAMES == ("even", "large", "loop", "straight")
    expected = {
        "even": {0, 2, 4, 6, 8}, "large": {5, 6, 7, 8, 9},
        "loop": {0, 6, 8, 9}, "straight": {1, 4, 7},
    }
    table = mnist_offline.digit_attributes(np.arange(10))
    assert table.shape == (10, 4) and table.dtype == np.float32
    for j, name in enumerate(mnist_offline.ATTRIBUTE_NAMES):
        assert set(np.flatnonzero(table[:, j]).tolist()) == expected[name], name
    np.testing.assert_array_equal(mnist_offline.digit_attributes([7, 7, 0]), table[[7, 7, 0]])
    in_tf = mnist_offline.tf_digit_attributes(np.array([3, 9])).numpy()
    np.testing.assert_array_equal(in_tf, table[[3, 9]])
    assert mnist_offline.digit_attributes(np.zeros(0, int)).shape == (0, 4)
    with pytest.raises(ValueError, match="digits 0-9"):
        mnist_offline.digit_attributes([10])


@pytest.mark.parametrize("split,size", [("train", 4500), ("test", 500)])
def test_attributes_of_real_examples_follow_their_digit(split, size):
    c = make_config()
    src = sources.open_source(c.data, split)
    plain = sources.open_source(c.data, split, "mnist_offline")
    assert src.info.name == NAME and src.splits == plain.splits
    assert src.info.attribute_names == ("even", "large", "loop", "straight")
    assert src.info.num_classes == 10 and src.info.class_names == plain.info.class_names
    assert src.info.num_train_examples == size
    batch = next(src.ds.batch(10_000).as_numpy_iterator())
    assert set(batch) == {"image", "label", "attributes"}
    assert batch["attributes"].shape == (size, 4) and batch["attributes"].dtype == np.float32
    expected = mnist_offline.digit_attributes(batch["label"])
    np.testing.assert_array_equal(batch["attributes"], expected)
    # The same examples, in the same order, as mnist_offline.
    plain_batch = next(plain.ds.batch(10_000).as_numpy_iterator())
    np.testing.assert_array_equal(batch["label"], plain_batch["label"])
    np.testing.assert_array_equal(batch["image"], plain_batch["image"])


def test_through_the_pipeline():
    c = make_config()
    # load_arrays gives images and labels (it drops attributes); the digits are mnist_offline's.
    images, labels, info = pipeline.load_arrays(c.data, "test")
    assert images.shape == (500, 28, 28, 1) and images.min() >= -1 and images.max() <= 1
    assert info.attribute_names == mnist_offline.ATTRIBUTE_NAMES
    assert np.bincount(labels).tolist() == [50] * 10
    # The training batches carry the attributes.
    info, batches = pipeline.build_train_data(c, sharding.make_mesh(), n_micro=1)
    assert info.name == NAME and info.num_train_examples == 4500 and info.num_classes == 10
    batch = next(batches)
    assert set(batch) == {"image", "label", "attributes"}
    assert batch["image"].shape == (1, 8, 28, 28, 1) and batch["attributes"].shape == (1, 8, 4)
    expected = mnist_offline.digit_attributes(np.asarray(batch["label"])[0])
    np.testing.assert_array_equal(np.asarray(batch["attributes"])[0], expected)


def test_class_filter_keeps_the_attributes_of_the_digit():
    c = make_config(classes="8,3")
    ds, info = pipeline.load_split(c.data, "test")
    batch = next(ds.batch(1000).as_numpy_iterator())
    assert info.class_names == ("8", "3") and np.bincount(batch["label"]).tolist() == [50, 50]
    digits = np.where(batch["label"] == 0, 8, 3)
    np.testing.assert_array_equal(batch["attributes"], mnist_offline.digit_attributes(digits))


def test_unknown_names_are_still_dataset_errors():
    c = make_config()
    match = "Unknown dataset 'mnist_offline_attribute'.*mnist_offline_attributes"
    with pytest.raises(DatasetError, match=match):
        sources.open_source(c.data, "train", "mnist_offline_attribute")
    with pytest.raises(DatasetError, match="no split 'validation'"):
        sources.open_source(c.data, "validation")
