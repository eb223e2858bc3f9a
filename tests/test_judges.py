"""Judges: small CNNs trained on the real offline digits (few steps here), and their cache."""

import json
import logging
import os

import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import judges
from ganjax.data import mnist_offline, pipeline
from ganjax.errors import ConfigError
from ganjax.models.classifier import SimpleCNN

from helpers import assert_trees_equal


def data_config(name="mnist_offline", **data):
    c = config_lib.base_config()
    c.data.name = name
    for k, v in data.items():
        c.data[k] = v
    return c.data


@pytest.fixture(scope="module")
def label_judge():
    return judges.train_judge(data_config(), "label", steps=60, progress=False)


@pytest.fixture(scope="module")
def attributes_judge():
    return judges.train_judge(data_config("mnist_offline_attributes"), "attributes", steps=150)


@pytest.fixture(scope="module")
def test_digits():
    images, labels, _ = pipeline.load_arrays(data_config(), "test")
    return images, labels


def test_label_judge_learns_the_digits(label_judge, test_digits):
    j = label_judge
    assert j.target == "label" and j.names == tuple("0123456789") and j.num_train == 4500
    assert isinstance(j.model, SimpleCNN) and j.model.depth == 2 and j.model.num_classes == 10
    assert j.test_accuracy > 0.6, j.test_accuracy  # chance: 0.1 (about 0.85 after 60 steps)
    assert len(j.test_accuracy_per_name) == 10
    # The held-out accuracy is the judge's accuracy on the real test digits (in [-1, 1]).
    images, labels = test_digits
    predicted = j.predict(images)
    assert predicted.shape == (500,) and predicted.dtype == np.int32
    assert np.mean(predicted == labels) == pytest.approx(j.test_accuracy)
    for c in range(10):
        assert np.mean(predicted[labels == c] == c) == pytest.approx(j.test_accuracy_per_name[c])


def test_outputs_shapes_and_batching(label_judge, test_digits):
    images = test_digits[0][:300]  # more than one EVAL_BATCH
    logits = label_judge.logits(images)
    assert logits.shape == (300, 10) and logits.dtype == np.float32
    alone = label_judge.logits(jnp.asarray(images[:7]))  # a jax array, a batch of its own
    np.testing.assert_allclose(alone, logits[:7], rtol=1e-5, atol=1e-5)
    features = label_judge.features(images)
    assert features.shape == (300, 128) and features.dtype == np.float32 and features.min() >= 0
    assert label_judge.predict(images[:0]).shape == (0,)
    assert label_judge.features(images[:0]).shape == (0, 128)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        label_judge.predict(images[0])


def test_attributes_judge(attributes_judge, test_digits):
    j = attributes_judge
    assert j.target == "attributes" and j.names == ("even", "large", "loop", "straight")
    assert len(j.test_accuracy_per_name) == 4
    assert j.test_accuracy == pytest.approx(np.mean(j.test_accuracy_per_name))
    # Always answering the majority value scores 0.575 here (about 0.85 after 150 steps).
    assert j.test_accuracy > 0.75, j.test_accuracy_per_name
    images, labels = test_digits
    predicted = j.predict(images)
    assert predicted.shape == (500, 4) and predicted.dtype == np.int32
    assert set(np.unique(predicted)) <= {0, 1}
    truth = mnist_offline.digit_attributes(labels)
    np.testing.assert_allclose(np.mean(predicted == truth, axis=0), j.test_accuracy_per_name)


def test_deterministic_given_the_seed():
    c = data_config()
    a = judges.train_judge(c, steps=15, seed=3, progress=False)
    b = judges.train_judge(c, steps=15, seed=3, progress=False)
    assert_trees_equal(a.variables, b.variables)
    assert a.test_accuracy == b.test_accuracy
    assert a.test_accuracy_per_name == b.test_accuracy_per_name


def test_config_errors():
    with pytest.raises(ConfigError, match="'attributes' judge.*'mnist_offline' has none"):
        judges.train_judge(data_config(), "attributes", steps=1)
    with pytest.raises(ConfigError, match="Unknown judge target 'digit'"):
        judges.train_judge(data_config(), "digit", steps=1)
    with pytest.raises(ConfigError, match="'label' judge needs class labels.*mnist_offline' has 1"):
        judges.train_judge(data_config(classes="3"), "label", steps=1)
    with pytest.raises(ConfigError, match="Unknown judge target"):
        judges.load_or_train("/nonexistent", data_config(), "digits")
    with pytest.raises(TypeError, match="stepz"):
        judges.load_or_train("/nonexistent", data_config(), stepz=3)


@pytest.fixture
def counted_training(monkeypatch, label_judge):
    """judges.train_judge replaced by one that records its arguments and returns `label_judge`."""
    calls = []

    def fake(data_config, target="label", **kwargs):
        calls.append(dict(kwargs, target=target, classes=data_config.classes))
        return label_judge

    monkeypatch.setattr(judges, "train_judge", fake)
    return calls


def test_load_or_train_caches(tmp_path, counted_training, label_judge, test_digits):
    calls, c = counted_training, data_config()
    first = judges.load_or_train(str(tmp_path), c, steps=40)
    assert len(calls) == 1 and calls[0]["steps"] == 40 and first is label_judge
    assert sorted(os.listdir(tmp_path)) == ["judge_label.json", "judge_label.msgpack"]
    meta = json.loads((tmp_path / "judge_label.json").read_text())
    assert meta["target"] == "label" and meta["names"] == list("0123456789") and meta["steps"] == 40
    assert meta["test_accuracy"] == label_judge.test_accuracy and meta["num_train"] == 4500
    fingerprint = meta["fingerprint"]
    assert fingerprint["data"]["name"] == "mnist_offline" and fingerprint["train"]["steps"] == 40

    # The same settings (the defaults spelled out, progress off) load it instead.
    loaded = judges.load_or_train(str(tmp_path), c, seed=0, steps=40, batch_size=64, progress=False)
    assert len(calls) == 1
    assert (loaded.target, loaded.names, loaded.num_train) == ("label", label_judge.names, 4500)
    assert loaded.test_accuracy == label_judge.test_accuracy
    assert loaded.test_accuracy_per_name == label_judge.test_accuracy_per_name
    assert loaded.model == label_judge.model
    assert_trees_equal(loaded.variables, label_judge.variables)
    images = test_digits[0][:50]
    np.testing.assert_array_equal(loaded.logits(images), label_judge.logits(images))

    # Another training argument, seed or data key: trained again (and the new one is cached).
    judges.load_or_train(str(tmp_path), c, steps=41)
    judges.load_or_train(str(tmp_path), c, steps=41)
    assert len(calls) == 2
    judges.load_or_train(str(tmp_path), c, steps=41, seed=1)
    judges.load_or_train(str(tmp_path), data_config(classes="0,1,2"), steps=41, seed=1)
    judges.load_or_train(str(tmp_path), c, steps=41, learning_rate=2e-3, seed=1)
    assert len(calls) == 5 and calls[3]["classes"] == "0,1,2"
    # Each target has its own files.
    attributes = data_config("mnist_offline_attributes")
    judges.load_or_train(str(tmp_path), attributes, "attributes", steps=41)
    assert len(calls) == 6 and calls[5]["target"] == "attributes"
    assert sorted(os.listdir(tmp_path)) == [
        "judge_attributes.json", "judge_attributes.msgpack",
        "judge_label.json", "judge_label.msgpack",
    ]


@pytest.mark.parametrize("damage", ["msgpack", "json", "swapped", "missing"])
def test_a_damaged_cache_is_retrained(tmp_path, counted_training, caplog, damage):
    c = data_config()
    judges.load_or_train(str(tmp_path), c, steps=40)
    msgpack, js = tmp_path / "judge_label.msgpack", tmp_path / "judge_label.json"
    if damage == "msgpack":
        msgpack.write_bytes(b"\x93not a msgpack file")
    elif damage == "json":
        js.write_text('{"target": "lab')
    elif damage == "swapped":  # weights of other settings (a crash between the two writes)
        msgpack.write_bytes(msgpack.read_bytes()[:-8] + bytes(8))
    else:
        msgpack.unlink()
    with caplog.at_level(logging.WARNING):
        judge = judges.load_or_train(str(tmp_path), c, steps=40)
    assert len(counted_training) == 2 and judge.num_train == 4500
    assert "unreadable" in caplog.text and "training it again" in caplog.text
    judges.load_or_train(str(tmp_path), c, steps=40)  # the rewritten cache loads
    assert len(counted_training) == 2
    assert sorted(os.listdir(tmp_path)) == ["judge_label.json", "judge_label.msgpack"]
