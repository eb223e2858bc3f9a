"""Classifier feature extractors (ganjax.models.classifier) and the batched extractor."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.metrics.features import batched_feature_extractor
from ganjax.models.classifier import SimpleCNN, VGGStyleCNN


def _key(seed):
    # The rbg PRNG compiles parameter initialisation ~4x faster than threefry on CPU.
    return jax.random.key(seed, impl="rbg")


@pytest.mark.parametrize("model,shape", [
    (SimpleCNN(num_classes=10, width=8, hidden=32), (3, 28, 28, 1)),              # MNIST
    (SimpleCNN(num_classes=7, width=8, depth=2, hidden=16, batch_norm=True), (2, 48, 48, 1)),
    (VGGStyleCNN(num_classes=5, width=4, depth=2, hidden=8), (2, 32, 32, 3)),     # RGB
])
def test_classifier_logits_and_penultimate_features(model, shape):
    x = jax.random.uniform(_key(0), shape, minval=-1, maxval=1)
    variables = jax.jit(model.init)(_key(1), x)
    apply = jax.jit(model.apply, static_argnames=("train", "return_features", "mutable"))
    logits = apply(variables, x)
    features = apply(variables, x, return_features=True)
    assert logits.shape == (shape[0], model.num_classes)
    assert features.shape == (shape[0], model.hidden)
    assert np.all(np.asarray(features) >= 0)  # after ReLU
    # The logits are the last Dense applied to the features (eval mode: no dropout).
    dense = variables["params"]["logits"]
    np.testing.assert_allclose(logits, features @ dense["kernel"] + dense["bias"],
                               rtol=1e-5, atol=1e-5)
    # The `features` method is the same computation.
    np.testing.assert_allclose(model.apply(variables, x[:1], method=type(model).features),
                               features[:1], rtol=1e-5, atol=1e-6)
    # Training mode: dropout rng and, with BatchNorm, mutable batch statistics.
    train_logits, updates = apply(variables, x, train=True, mutable=("batch_stats",),
                                  rngs={"dropout": _key(2)})
    assert train_logits.shape == logits.shape
    assert ("batch_stats" in updates) == model.batch_norm


def test_classifier_too_deep_for_image_is_a_clear_error():
    model = SimpleCNN(num_classes=2, depth=5)
    with pytest.raises(ValueError, match="depth <= 4"):
        model.init(_key(0), jnp.zeros((1, 28, 28, 1)))


def test_batched_feature_extractor_matches_direct_apply():
    model = SimpleCNN(num_classes=3, width=4, depth=2, hidden=6)
    images = np.random.default_rng(0).uniform(-1, 1, (23, 16, 16, 1)).astype(np.float32)
    variables = model.init(_key(0), images[:1])
    apply = functools.partial(model.apply, variables, method=SimpleCNN.features)
    expected = np.asarray(apply(images))
    for batch_size in (5, 23, 64):  # padded last batch, exact, larger than the set
        got = batched_feature_extractor(apply, batch_size=batch_size)(images)
        assert got.shape == (23, 6)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Data-parallel over all devices (4 CPU devices in the test suite, 1 elsewhere).
    mesh = jax.make_mesh((jax.device_count(),), ("data",),
                         axis_types=(jax.sharding.AxisType.Explicit,))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    got = batched_feature_extractor(apply, batch_size=4 * jax.device_count(),
                                    sharding=sharding)(images)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
