"""`NetState.with_data_batch_stats` ("precise BN") against the statistics computed by hand."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax.train_state import NetState


class TwoNorms(nn.Module):
    """Dense -> BN (momentum 0.9) -> Dense -> BN (momentum 0.5), and a counter that training
    mode bumps in the same collection (as spectral norm's vectors are)."""

    @nn.compact
    def __call__(self, x, train: bool):
        count = self.variable("batch_stats", "count", jnp.zeros, ())
        if train and not self.is_initializing():
            count.value += 1.0
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn1")(nn.Dense(5, name="d1")(x))
        return nn.BatchNorm(use_running_average=not train, momentum=0.5, name="bn2")(nn.Dense(3, name="d2")(h))


def _net():
    module = TwoNorms()
    variables = module.init(jax.random.PRNGKey(0), jnp.zeros((2, 4)), train=False)
    net = NetState.create(module.apply, variables, optax.sgd(0.1))
    # Running averages far from the data's, as a GAN's D ends with.
    return net.replace(batch_stats=jax.tree.map(lambda x: x + 7.0, net.batch_stats))


def test_one_batch_gives_the_exact_statistics_of_every_layer():
    net = _net()
    x = np.random.default_rng(0).normal(2.0, 3.0, (40, 4)).astype(np.float32)
    new = net.with_data_batch_stats(x, batch_size=40)
    p = jax.tree.map(np.asarray, net.params)
    h1 = x @ p["d1"]["kernel"] + p["d1"]["bias"]
    np.testing.assert_allclose(new.batch_stats["bn1"]["mean"], h1.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(new.batch_stats["bn1"]["var"], h1.var(0), rtol=1e-4, atol=1e-4)
    # The second layer sees the first normalised by the batch's own statistics (training mode).
    n1 = (h1 - h1.mean(0)) / np.sqrt(h1.var(0) + 1e-5) * p["bn1"]["scale"] + p["bn1"]["bias"]
    h2 = n1 @ p["d2"]["kernel"] + p["d2"]["bias"]
    np.testing.assert_allclose(new.batch_stats["bn2"]["mean"], h2.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(new.batch_stats["bn2"]["var"], h2.var(0), rtol=1e-4, atol=1e-4)
    # Parameters and the other statistics (the counter) unchanged.
    assert float(new.batch_stats["count"]) == float(net.batch_stats["count"]) == 7.0
    assert jax.tree.all(jax.tree.map(np.array_equal, new.params, net.params))
    # Inference with the new statistics normalises the data to the BN's scale and bias.
    out = np.asarray(new.apply_fn(new.variables, x, train=False))
    np.testing.assert_allclose(out.mean(0), p["bn2"]["bias"], atol=1e-3)


def test_batches_merge_to_the_whole_set_and_the_remainder_is_dropped():
    net = _net()
    x = np.random.default_rng(1).normal(-1.0, 2.0, (43, 4)).astype(np.float32)
    new = net.with_data_batch_stats(x, batch_size=10)  # 4 batches of 10; 3 images dropped
    h1 = x[:40] @ np.asarray(net.params["d1"]["kernel"]) + np.asarray(net.params["d1"]["bias"])
    # The first layer's input does not depend on the batch: mean and var of all 40 exactly.
    np.testing.assert_allclose(new.batch_stats["bn1"]["mean"], h1.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(new.batch_stats["bn1"]["var"], h1.var(0), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="at least batch_size=50"):
        net.with_data_batch_stats(x, batch_size=50)


def test_a_network_without_batch_norm_is_returned_as_is():
    module = nn.Dense(2)
    net = NetState.create(module.apply, module.init(jax.random.PRNGKey(0), jnp.zeros((1, 3))), optax.sgd(0.1))
    assert net.with_data_batch_stats(np.zeros((4, 3), np.float32), batch_size=2) is net


def test_compiles_once_per_network_and_shape():
    """An evaluator re-estimates the statistics at every evaluation with new parameters: the
    training-mode passes compile on the first call only."""
    from ganjax import train_state

    net = _net()
    x = np.random.default_rng(2).normal(size=(20, 4)).astype(np.float32)
    net.with_data_batch_stats(x, batch_size=10)
    compiled = train_state._train_mode_batch_moments._cache_size()
    later = net.replace(params=jax.tree.map(lambda p: p + 1.0, net.params))
    new = later.with_data_batch_stats(x, batch_size=10)
    assert train_state._train_mode_batch_moments._cache_size() == compiled
    h1 = x @ np.asarray(later.params["d1"]["kernel"]) + np.asarray(later.params["d1"]["bias"])
    np.testing.assert_allclose(new.batch_stats["bn1"]["mean"], h1.mean(0), rtol=1e-4, atol=1e-4)
