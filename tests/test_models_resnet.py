"""The ACGAN / WACGAN report's ResNet architecture (`ganjax/models/resnet.py`), on tiny widths."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import models
from ganjax.config import apply_variant, base_config, update_flattened, validate
from ganjax.latent import LatentSpec
from ganjax.models import resnet

LABEL = LatentSpec(noise=8, num_classes=10)
ATTRS = LatentSpec(noise=8, num_attributes=40)
PLAIN = LatentSpec(noise=8)


def tiny_config(**overrides):
    mc = resnet.default_config()
    update_flattened(mc, {k.removeprefix("model."): v for k, v in resnet.TINY.items()})
    for key, value in overrides.items():
        mc[key] = value
    return mc


def build(shape, latent, heads=(), d_conditional=False, **overrides):
    return resnet.build_pair(tiny_config(**overrides), shape, latent, heads, d_conditional)


def g_inputs(latent, n=3, seed=0):
    parts = latent.sample(jax.random.PRNGKey(seed), n)
    return latent.vector(parts), latent.condition(parts)


def init_g(generator, latent, n=3):
    z, cond = g_inputs(latent, n)
    return generator.init(jax.random.PRNGKey(1), z, cond, train=False), z, cond


def images(shape, n=3, seed=2):
    return jax.random.uniform(jax.random.PRNGKey(seed), (n, *shape), minval=-1.0, maxval=1.0)


# --------------------------------------------------------------------------------------------
# Generator.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, latent",
    [((28, 28, 1), LABEL), ((64, 64, 3), ATTRS), ((32, 32, 3), PLAIN), ((28, 28, 1), PLAIN)],
    ids=["label28", "attributes64", "plain32", "plain28"],
)
def test_generator_shapes_and_range(shape, latent):
    generator, _ = build(shape, latent)
    variables, z, cond = init_g(generator, latent)
    for train in (False, True):
        out = generator.apply(variables, z, cond, train=train, mutable=["batch_stats"])[0]
        assert out.shape == (3, *shape)
        assert bool(jnp.all(jnp.abs(out) <= 1.0)) and bool(jnp.all(jnp.isfinite(out)))
    assert float(out.std()) > 0


def test_generator_plan_and_channels():
    # 28 px: the report's 7x7 base and two stages; 64 px: a 4x4 base and four stages.
    assert resnet.generator_plan(28) == (7, 2) and resnet.generator_plan(64) == (4, 4)
    assert resnet.stage_channels(128, 2) == (128, 64)
    assert resnet.stage_channels(128, 4) == (128, 64, 32, 16)
    assert resnet.stage_channels(128, 5) == (128, 64, 32, 16, 16)  # floor 16
    assert resnet.stage_channels(8, 3) == (8, 8, 8)  # narrower than the floor: kept
    generator = resnet.Generator(image_size=64, channels=3, width=32, blocks_per_stage=1, num_attributes=40)
    params = jax.eval_shape(lambda: init_g(generator, ATTRS)[0])["params"]
    # concat(z [8], attributes [40]) -> Dense -> 4x4x32.
    assert params["dense"]["kernel"].shape == (8 + 40, 4 * 4 * 32)
    assert [k for k in params if k.startswith("stage")] == [f"stage{i}_block0" for i in range(4)]
    assert params["stage3_block0"]["conv2"]["kernel"].shape == (3, 3, 16, 16)
    assert params["to_image"]["kernel"].shape == (3, 3, 16, 3)


@pytest.mark.parametrize("latent, shape", [(LABEL, (28, 28, 1)), (ATTRS, (32, 32, 3))])
def test_generator_uses_the_condition(latent, shape):
    generator, _ = build(shape, latent)
    variables, z, cond = init_g(generator, latent)
    if latent.num_classes:
        other = (cond + 1) % latent.num_classes
    else:
        other = 1.0 - cond
    a = generator.apply(variables, z, cond, train=False)
    b = generator.apply(variables, z, other, train=False)
    assert float(jnp.abs(a - b).max()) > 1e-4
    # The noise alone changes it too, and the same inputs give the same images.
    z2, _ = g_inputs(latent, seed=5)
    assert float(jnp.abs(a - generator.apply(variables, z2, cond, train=False)).max()) > 1e-4
    np.testing.assert_array_equal(a, generator.apply(variables, z, cond, train=False))


def test_unconditional_generator_takes_only_the_noise():
    generator, _ = build((28, 28, 1), PLAIN)
    variables, z, cond = init_g(generator, PLAIN)
    assert cond is None
    assert variables["params"]["dense"]["kernel"].shape[0] == PLAIN.dim


# --------------------------------------------------------------------------------------------
# Batch normalisation.
# --------------------------------------------------------------------------------------------


def _batch_norms(module, variables, *args, **kwargs):
    """Every nn.BatchNorm called during `module.apply`."""
    found = []

    def record(next_fun, args_, kwargs_, context):
        if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
            found.append(context.module)
        return next_fun(*args_, **kwargs_)

    with nn.intercept_methods(record):
        module.apply(variables, *args, mutable=["batch_stats"], **kwargs)
    return found


def test_batch_norm_momentum_and_epsilon_are_pytorch_defaults():
    assert resnet.BN_MOMENTUM == 0.9 and resnet.BN_EPSILON == 1e-5
    generator, discriminator = build((28, 28, 1), LABEL, d_batch_norm=True)
    variables, z, cond = init_g(generator, LABEL)
    g_bns = _batch_norms(generator, variables, z, cond, train=True)
    # bn_base + 2 per residual block (1 block per stage, 2 stages: 7 -> 14 -> 28).
    assert len(g_bns) == 1 + 2 * 2
    x = images((28, 28, 1))
    d_vars = discriminator.init(jax.random.PRNGKey(0), x, None, train=False)
    d_bns = _batch_norms(discriminator, d_vars, x, None, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    assert len(d_bns) == 1  # every block but the first: (8, 16) -> one
    for bn in g_bns + d_bns:
        assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)


def test_batch_norm_update_rule():
    # running = 0.9 * running + 0.1 * batch; y = (x - mean) / sqrt(var + 1e-5) * gamma + beta.
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 3)) * 2.0 + 1.0
    bn = resnet.make_batch_norm(train=True)
    variables = bn.init(jax.random.PRNGKey(1), x)
    y, updates = bn.apply(variables, x, mutable=["batch_stats"])
    stats = updates["batch_stats"]
    np.testing.assert_allclose(stats["mean"], 0.1 * x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * x.var(0), rtol=1e-5)
    gamma = variables["params"]["scale"]
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * gamma, rtol=1e-4, atol=1e-5)
    assert float(jnp.abs(gamma - 1.0).max()) < 0.2 and float(jnp.abs(gamma - 1.0).max()) > 0


def test_batch_stats_update_only_in_train_mode():
    generator, _ = build((28, 28, 1), LABEL)
    variables, z, cond = init_g(generator, LABEL)
    _, train_updates = generator.apply(variables, z, cond, train=True, mutable=["batch_stats"])
    _, eval_updates = generator.apply(variables, z, cond, train=False, mutable=["batch_stats"])
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), variables["batch_stats"],
                         train_updates["batch_stats"])
    assert min(jax.tree.leaves(moved)) > 0  # every BN layer's statistics moved
    same = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), variables["batch_stats"],
                        eval_updates["batch_stats"])
    assert max(jax.tree.leaves(same)) == 0


# --------------------------------------------------------------------------------------------
# Discriminator.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, latent, heads",
    [((28, 28, 1), LABEL, (("aux", 10),)), ((64, 64, 3), ATTRS, (("aux", 40),)),
     ((32, 32, 3), PLAIN, ()), ((28, 28, 1), PLAIN, (("aux", 10), ("q", 3)))],
    ids=["label28", "attributes64", "plain32", "two_heads"],
)
def test_discriminator_heads(shape, latent, heads):
    _, discriminator = build(shape, latent, heads)
    x = images(shape)
    variables = discriminator.init(jax.random.PRNGKey(0), x, None, train=False)
    out = discriminator.apply(variables, x, None, train=False)
    assert set(out) == {"score"} | {name for name, _ in heads}
    assert out["score"].shape == (3,)
    for name, size in heads:
        assert out[name].shape == (3, size)
        assert f"head_{name}" in variables["params"]
    assert "head" in variables["params"]
    out = discriminator.apply(variables, x, None, train=True, return_features=True,
                              rngs={"dropout": jax.random.PRNGKey(1)})
    side = -(-shape[0] // 4)  # two blocks (TINY d_widths (8, 16)), ceil halvings
    assert out["features"].shape == (3, side * side * 16)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in out.values())


def test_default_discriminator_final_maps():
    disc = resnet.Discriminator(heads=(("aux", 10),))
    for size, side in ((28, 2), (64, 4), (32, 2)):
        x = jax.ShapeDtypeStruct((2, size, size, 1), jnp.float32)

        def run(x):
            variables = disc.init(jax.random.PRNGKey(0), x, train=False)
            return disc.apply(variables, x, train=False, return_features=True)

        assert jax.eval_shape(run, x)["features"].shape == (2, side * side * 128)


def test_avg_pool_odd_sides_repeat_the_edge():
    x = jnp.arange(2 * 7 * 7 * 3, dtype=jnp.float32).reshape(2, 7, 7, 3)
    y = resnet.avg_pool2x(x)
    assert y.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(y[:, 0, 0], x[:, :2, :2].mean((1, 2)))
    np.testing.assert_allclose(y[:, 3, 3], x[:, 6, 6])
    np.testing.assert_allclose(y[:, 3, 1], x[:, 6, 2:4].mean(1))
    even = x[:, :6, :6]
    np.testing.assert_allclose(resnet.avg_pool2x(even), even.reshape(2, 3, 2, 3, 2, 3).mean((2, 4)))


def test_dropout_only_in_train_mode():
    _, discriminator = build((28, 28, 1), LABEL, (("aux", 10),), d_dropout=0.5)
    x = images((28, 28, 1))
    variables = discriminator.init(jax.random.PRNGKey(0), x, None, train=False)
    run = lambda train, key: discriminator.apply(variables, x, None, train=train, rngs={"dropout": key})
    a, b = run(True, jax.random.PRNGKey(1)), run(True, jax.random.PRNGKey(2))
    assert float(jnp.abs(a["score"] - b["score"]).max()) > 1e-6
    np.testing.assert_array_equal(run(True, jax.random.PRNGKey(1))["score"], a["score"])
    c, d = run(False, jax.random.PRNGKey(1)), run(False, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(c["score"], d["score"])
    np.testing.assert_array_equal(c["aux"], d["aux"])
    # Eval mode needs no dropout key; without dropout train mode is deterministic.
    discriminator.apply(variables, x, None, train=False)
    _, no_drop = build((28, 28, 1), LABEL, d_dropout=0.0)
    v0 = no_drop.init(jax.random.PRNGKey(0), x, None, train=False)
    np.testing.assert_array_equal(no_drop.apply(v0, x, None, train=True)["score"],
                                  no_drop.apply(v0, x, None, train=False)["score"])


def test_conditional_discriminator_label_and_attributes():
    for latent, key in ((LABEL, "label_dense"), (ATTRS, "attribute_dense")):
        _, discriminator = build((32, 32, 3), latent, (("aux", 4),), d_conditional=True, d_dropout=0.0)
        x = images((32, 32, 3))
        _, cond = g_inputs(latent)
        variables = discriminator.init(jax.random.PRNGKey(0), x, cond, train=False)
        assert variables["params"][key]["kernel"].shape == (latent.num_classes or 40, 32 * 32)
        # The condition is one more input channel.
        assert variables["params"]["block0"]["conv1"]["kernel"].shape == (3, 3, 4, 8)
        other = (cond + 1) % 10 if latent.num_classes else 1.0 - cond
        a = discriminator.apply(variables, x, cond, train=False)["score"]
        b = discriminator.apply(variables, x, other, train=False)["score"]
        assert float(jnp.abs(a - b).max()) > 0
    # ACGAN's D (d_conditional=False) has no conditioning layer.
    _, discriminator = build((32, 32, 3), ATTRS, (("aux", 40),), d_conditional=False)
    variables = discriminator.init(jax.random.PRNGKey(0), images((32, 32, 3)), None, train=False)
    assert "attribute_dense" not in variables["params"] and "label_dense" not in variables["params"]


def test_spectral_norm_wraps_every_d_layer():
    _, discriminator = build((28, 28, 1), LABEL, (("aux", 10),), spectral_norm=True)
    x = images((28, 28, 1))
    variables = discriminator.init(jax.random.PRNGKey(0), x, None, train=False)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(variables["batch_stats"])]
    sigmas = [p for p in paths if p.endswith("sigma']")]
    # 2 blocks x (conv1, conv2, skip) + score head + aux head.
    assert len(sigmas) == 2 * 3 + 2
    out, updates = discriminator.apply(variables, x, None, train=True, mutable=["batch_stats"],
                                       rngs={"dropout": jax.random.PRNGKey(1)})
    assert out["score"].shape == (3,) and out["aux"].shape == (3, 10)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                         variables["batch_stats"], updates["batch_stats"])
    assert max(jax.tree.leaves(moved)) > 0
    # Without spectral norm (and BN) D has no batch statistics at all.
    _, plain = build((28, 28, 1), LABEL, (("aux", 10),))
    assert "batch_stats" not in plain.init(jax.random.PRNGKey(0), x, None, train=False)


# --------------------------------------------------------------------------------------------
# Residual blocks.
# --------------------------------------------------------------------------------------------


def test_residual_skip_projects_exactly_when_channels_change():
    x8, x4 = jnp.ones((2, 8, 8, 8)), jnp.ones((2, 8, 8, 4))
    same = resnet.ResBlock(8).init(jax.random.PRNGKey(0), x8, train=False)["params"]
    changed = resnet.ResBlock(8).init(jax.random.PRNGKey(0), x4, train=False)["params"]
    assert "skip" not in same
    assert set(changed["skip"]) == {"kernel"}  # no bias
    assert changed["skip"]["kernel"].shape == (1, 1, 4, 8)
    same = resnet.DownBlock(8).init(jax.random.PRNGKey(0), x8, train=False)["params"]
    changed = resnet.DownBlock(8).init(jax.random.PRNGKey(0), x4, train=False)["params"]
    assert "skip" not in same
    assert changed["skip"]["kernel"].shape == (1, 1, 4, 8)
    assert resnet.DownBlock(8).apply({"params": same}, x8, train=False).shape == (2, 4, 4, 8)
    # In the default 28 px G: the first stage keeps 128 channels, the second's first block halves them.
    generator = resnet.Generator(image_size=28, channels=1, width=128, blocks_per_stage=2, num_classes=10)
    z, cond = g_inputs(LABEL, 2)
    params = jax.eval_shape(lambda: generator.init(jax.random.PRNGKey(0), z, cond, train=False))["params"]
    with_skip = sorted(k for k, v in params.items() if k.startswith("stage") and "skip" in v)
    assert with_skip == ["stage1_block0"]
    assert params["stage1_block0"]["skip"]["kernel"].shape == (1, 1, 128, 64)


def test_residual_block_is_identity_plus_residual():
    # With zeroed convs the block is LeakyReLU(BN(0) + x) = LeakyReLU(x + beta) = LeakyReLU(x).
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 4))
    block = resnet.ResBlock(4)
    variables = block.init(jax.random.PRNGKey(1), x, train=False)
    params = jax.tree.map(jnp.zeros_like, variables["params"])
    y = block.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, train=False)
    np.testing.assert_allclose(y, nn.leaky_relu(x, 0.2), atol=1e-6)


# --------------------------------------------------------------------------------------------
# Gradients.
# --------------------------------------------------------------------------------------------


def test_gradients_through_g_and_d_are_finite():
    shape = (28, 28, 1)
    # The most layered D: spectral norm, batch norm and dropout.
    generator, discriminator = build(shape, LABEL, (("aux", 10),), spectral_norm=True, d_batch_norm=True)
    g_vars, z, cond = init_g(generator, LABEL)
    d_vars = discriminator.init(jax.random.PRNGKey(3), images(shape), None, train=False)

    def loss(g_params, d_params):
        fake, _ = generator.apply({"params": g_params, "batch_stats": g_vars["batch_stats"]}, z, cond,
                                  train=True, mutable=["batch_stats"])
        out, _ = discriminator.apply({"params": d_params, "batch_stats": d_vars["batch_stats"]}, fake, None,
                                     train=True, mutable=["batch_stats"],
                                     rngs={"dropout": jax.random.PRNGKey(4)})
        return out["score"].mean() + jax.nn.log_softmax(out["aux"])[jnp.arange(3), cond].mean()

    g_grads, d_grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(g_vars["params"], d_vars["params"])
    for grads in (g_grads, d_grads):
        leaves = jax.tree.leaves(grads)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
        assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0
    # The gradient reaches G's first layer and the conditioning.
    assert float(jnp.abs(g_grads["dense"]["kernel"][LABEL.noise:]).sum()) > 0



def test_input_gradient_is_twice_differentiable():
    # WGAN-GP's penalty differentiates D's input gradient again.
    shape = (16, 16, 1)
    _, discriminator = build(shape, PLAIN, d_dropout=0.0)
    d_vars = discriminator.init(jax.random.PRNGKey(3), images(shape), None, train=False)

    def score_sum(x, d_params):
        return discriminator.apply({"params": d_params}, x, None, train=False)["score"].sum()

    penalty = lambda d_params: (jax.grad(score_sum)(images(shape), d_params) ** 2).sum()
    gp_grads = jax.jit(jax.grad(penalty))(d_vars["params"])
    leaves = jax.tree.leaves(gp_grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0


# --------------------------------------------------------------------------------------------
# Config and the models registry.
# --------------------------------------------------------------------------------------------


def test_default_config_and_tiny():
    mc = resnet.default_config()
    assert mc.arch == "resnet" and mc.conv_impl == "fast"
    assert (mc.z_dim, mc.g_width, mc.blocks_per_stage) == (100, 128, 2)
    assert tuple(mc.d_widths) == (16, 32, 64, 128)
    assert (mc.d_dropout, mc.d_batch_norm, mc.spectral_norm) == (0.25, False, False)
    assert set(k.removeprefix("model.") for k in resnet.TINY) <= set(mc)
    # conv_impl does not change the network (stride-1 convolutions only).
    g_fast, d_fast = build((28, 28, 1), LABEL, conv_impl="fast")
    g_native, d_native = build((28, 28, 1), LABEL, conv_impl="native")
    assert g_fast == g_native and d_fast == d_native


@pytest.mark.parametrize(
    "overrides, shape, needle",
    [
        ({"conv_impl": "winograd"}, (28, 28, 1), "config.model.conv_impl"),
        ({"d_dropout": 1.0}, (28, 28, 1), "config.model.d_dropout"),
        ({"d_dropout": -0.1}, (28, 28, 1), "config.model.d_dropout"),
        ({}, (28, 32, 1), "square"),
        ({"d_widths": ()}, (28, 28, 1), "config.model.d_widths"),
        ({"d_widths": (8, 16, 32, 64, 128)}, (28, 28, 1), "config.model.d_widths"),
        ({"d_widths": (8, 16, 32)}, (6, 6, 1), "config.model.d_widths"),
        ({"blocks_per_stage": 0}, (28, 28, 1), "config.model.blocks_per_stage"),
        ({"g_width": 0}, (28, 28, 1), "config.model.g_width"),
        ({}, (30, 30, 1), "config.data.image_size"),
    ],
)
def test_build_pair_rejects_bad_configs(overrides, shape, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")) as info:
        build(shape, LABEL, **overrides)
    assert "\n" not in str(info.value)


def test_smallest_images_for_the_d_stages_build():
    # 4 blocks need 16 px (16 -> 8 -> 4 -> 2 -> 1).
    _, discriminator = build((16, 16, 1), LABEL, d_widths=(4, 4, 4, 4))
    x = images((16, 16, 1))
    out = discriminator.apply(discriminator.init(jax.random.PRNGKey(0), x, None, train=False), x, None,
                              train=False, return_features=True)
    assert out["features"].shape == (3, 4)


def test_registered_as_an_architecture():
    assert "resnet" in models.names()
    module = models.get("resnet")
    assert module is resnet
    generator, discriminator = module.build_pair(
        module.default_config(), (28, 28, 1), LABEL, (("aux", 10),), False)
    assert isinstance(generator, resnet.Generator) and isinstance(discriminator, resnet.Discriminator)
    assert discriminator.heads == (("aux", 10),) and discriminator.num_classes == 0
    assert generator.num_classes == 10 and generator.width == 128


def test_config_with_arch_resnet_validates_and_tiny_applies():
    config = base_config("dcgan", arch="resnet")
    assert config.model.arch == "resnet"
    validate(config)
    tiny = apply_variant(base_config("dcgan", arch="resnet"), "tiny")
    assert tiny.model.g_width == 16 and tuple(tiny.model.d_widths) == (8, 16)
    validate(tiny)
