"""The DCGAN family's knobs, on random batches (no dataset needed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import gans
from ganjax.config import ConfigError, apply_variant, base_config
from ganjax.data.pipeline import DataInfo
from ganjax.gans.dcgan import instance_noise_std

INFO = DataInfo("fake", (16, 16, 1), 3, ("a", "b", "c"), 100)


def make(**overrides):
    c = apply_variant(base_config(), "tiny")
    for key, value in overrides.items():
        section, name = key.split("__")
        c[section][name] = value
    gan = gans.create(c, INFO)
    state = gan.init_state(jax.random.PRNGKey(0))
    n = gan.n_micro
    batch = {
        "image": jax.random.uniform(jax.random.PRNGKey(1), (n, 8, 16, 16, 1), minval=-1, maxval=1),
        "label": jnp.tile(jnp.arange(8) % 3, (n, 1)),
    }
    return gan, state, batch


def run_steps(gan, state, batch, k=2):
    step = jax.jit(gan.train_step)
    for _ in range(k):
        state, metrics = step(state, batch)
    return state, jax.device_get(metrics)


@pytest.mark.parametrize("loss", ["minimax", "non_saturating", "least_squares", "wasserstein", "hinge"])
def test_every_loss_trains(loss):
    gan, state0, batch = make(gan__loss=loss)
    state, metrics = run_steps(gan, state0, batch)
    assert int(state.step) == 2
    assert all(np.isfinite(v) for v in metrics.values())
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state0.generator.params, state.generator.params)
    assert max(jax.tree.leaves(moved)) > 0


def test_weight_clipping_keeps_critic_in_range():
    gan, state, batch = make(gan__loss="wasserstein", gan__weight_clip=0.01, optim__optimizer="rmsprop",
                             model__d_batch_norm=False)
    state, _ = run_steps(gan, state, batch, k=3)
    leaves = jax.tree.leaves(state.discriminator.params)
    assert max(float(jnp.abs(x).max()) for x in leaves) <= 0.01 + 1e-7
    # The generator is not clipped.
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(state.generator.params)) > 0.01


def test_gradient_penalty_and_critic_steps():
    gan, state, batch = make(gan__loss="wasserstein", gan__gp_weight=10.0, gan__d_steps=3,
                             model__d_batch_norm=False)
    assert gan.n_micro == 3 and batch["image"].shape[0] == 3
    state, metrics = run_steps(gan, state, batch, k=1)
    # Adam's step counter: 3 critic updates, 1 generator update per train step.
    assert int(state.discriminator.opt_state[0].count) == 3
    assert int(state.generator.opt_state[0].count) == 1
    assert metrics["gradient_penalty"] > 0
    np.testing.assert_allclose(metrics["d_loss"], metrics["d_adv_loss"] + 10 * metrics["gradient_penalty"], rtol=1e-5)


def test_instance_noise_schedule():
    s = lambda step: float(instance_noise_std(jnp.asarray(step), 0.2, 100))
    assert s(0) == pytest.approx(0.2) and s(50) == pytest.approx(0.1) and s(100) == 0 and s(300) == 0
    assert float(instance_noise_std(jnp.asarray(10**6), 1 / 15, 0)) == pytest.approx(1 / 15)
    gan, state, batch = make(gan__instance_noise=0.2, gan__instance_noise_anneal_steps=4)
    _, metrics = run_steps(gan, state, batch, k=2)
    assert metrics["instance_noise"] == pytest.approx(0.2 * (1 - 1 / 4))  # at step index 1


def test_spectral_norm_bounds_every_d_layer():
    gan, state, batch = make(model__spectral_norm=True, model__d_batch_norm=False)
    state, _ = run_steps(gan, state, batch, k=30)
    sigmas = {name: value for group in state.discriminator.batch_stats.values()
              for name, value in group.items() if name.endswith("/sigma")}
    assert sorted(sigmas) == ["DownConv_0/kernel/sigma", "DownConv_1/kernel/sigma", "head/kernel/sigma"]
    # sigma is the power-iteration estimate of each kernel's largest singular value (the kernel
    # reshaped to [fan_in, fan_out]); 30 updates of one iteration each get within 5%.
    for name, sigma in sigmas.items():
        layer = name.split("/")[0]
        kernel = np.asarray(state.discriminator.params[layer]["kernel"])
        true_sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert float(sigma) == pytest.approx(true_sigma, rel=0.05), name


def test_sigmoid_output_dropout_and_conditioning():
    gan, state, batch = make(model__d_output="sigmoid", model__d_dropout=0.5, gan__conditional=True)
    d = state.discriminator
    x = batch["image"][0]
    labels = batch["label"][0]
    scores = d.apply_fn(d.variables, x, labels, train=False)["score"]
    assert bool(jnp.all((scores > 0) & (scores < 1)))
    train = lambda seed: d.apply_fn(d.variables, x, labels, train=True, mutable=["batch_stats"],
                                    rngs={"dropout": jax.random.PRNGKey(seed)})[0]["score"]
    a, b = train(1), train(2)
    assert float(jnp.abs(a - b).max()) > 0  # dropout is active in training ...
    np.testing.assert_array_equal(scores, d.apply_fn(d.variables, x, labels, train=False)["score"])  # ... not in eval
    inputs, rows = gan.grid_inputs(jax.random.PRNGKey(0), cols=2)
    assert rows == 3 and inputs["label"].tolist() == [0, 0, 1, 1, 2, 2]
    same_z = {"z": jnp.repeat(inputs["z"][:1], 3, axis=0), "label": jnp.arange(3)}
    images = gan.generate(state, same_z)
    assert images.shape == (3, 16, 16, 1) and float(jnp.abs(images[0] - images[1]).max()) > 0


def test_the_label_enters_g_as_a_map_or_with_the_noise():
    """g_label=map: a dense projection of the one-hot label to one channel of the base map;
    g_label=input: the one-hot label concatenated with z, so the first dense layer is 3 wider."""
    gan_map, state_map, _ = make(gan__conditional=True)
    gan_in, state_in, _ = make(gan__conditional=True, model__g_label="input")
    g_map, g_in = state_map.generator.params, state_in.generator.params
    assert "label_dense" in g_map and "label_dense" not in g_in
    z_dim = gan_in.latent.dim
    assert g_in["Dense_0"]["kernel"].shape[0] == z_dim + 3 and g_map["Dense_0"]["kernel"].shape[0] == z_dim
    # The label changes the image through the noise path alone.
    inputs = {"z": jnp.zeros((3, z_dim)) + 0.3, "label": jnp.arange(3)}
    images = gan_in.generate(state_in, inputs)
    assert float(jnp.abs(images[0] - images[1]).max()) > 0
    with pytest.raises((ConfigError, ValueError), match="g_label"):
        make(gan__conditional=True, model__g_label="embedding")


def test_config_errors():
    with pytest.raises(ConfigError, match="label smoothing"):
        make(gan__loss="hinge", gan__real_target=0.9)
    with pytest.raises(ConfigError, match="conv_impl"):
        make(model__conv_impl="winograd")
    with pytest.raises(ConfigError, match="no class labels"):
        c = apply_variant(base_config(), "tiny")
        c.gan.conditional = True
        gans.create(c, DataInfo("faces", (16, 16, 3), 0, (), 10))
