"""BEGAN and Info-BEGAN: one step against the paper's formulas by hand, the learning-rate decays,
the architecture, the tiny configs through launch.py (with job=synthesize on Info-BEGAN), exact
resume with k_t, four devices against one, and one-line config errors."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import gans, train
from ganjax.config import validate
from ganjax.data.core import DataInfo
from ganjax.errors import ConfigError
from ganjax.models import began as began_models
from tests.helpers import assert_trees_equal, assert_trees_match_across_devices, launch, load_config, numpy_gaussian_mmd2, numpy_global_norm, tiny_algorithm_config

DIGITS = DataInfo("digits", (28, 28, 1), 10, tuple("0123456789"), 100)


def _tiny(name="began", **overrides):
    return tiny_algorithm_config(name, **overrides)


def _adam_first_step(params, grads, lr):
    """Adam's first update from zero moments: p - lr * g / (|g| + eps) (bias-corrected)."""
    return jax.tree.map(lambda p, g: p - lr * g / (jnp.abs(g) + 1e-8), params, grads)


# --------------------------------------------------------------------------------------------
# One step by hand.
# --------------------------------------------------------------------------------------------


def test_one_step_matches_the_paper_by_hand():
    """L(v) = mean |v - D(v)|, L_D = L(x) - k_t L(G(z)), L_G = L(G(z)), k_t+1 = clip(k_t +
    lambda_k (gamma L(x) - L(G(z))), 0, 1) and M_global = L(x) + |gamma L(x) - L(G(z))|, from the
    same D outputs in numpy; D moves along the gradient of L_D and G along that of L_G, both
    taken at the step's starting parameters (a simultaneous update), and the logged gradient
    norms are those gradients' global L2 norms."""
    gan = gans.create(_tiny(**{"began.gamma": 0.7, "began.lambda_k": 0.5}), DIGITS)
    state = gan.init_state(jax.random.PRNGKey(0)).replace(k_t=jnp.asarray(0.3, jnp.float32))
    batch = gan.example_batch(jax.random.PRNGKey(1), 8)
    new, metrics = jax.jit(gan.train_step)(state, batch)
    metrics = jax.device_get(metrics)

    real = batch["image"][0]
    parts = gan.latent.sample(state.step_key(), 8)
    g_apply = lambda p: gan.generator.apply({"params": p}, gan.latent.vector(parts))
    d_apply = lambda p, x: gan.discriminator.apply({"params": p}, x)["reconstruction"]
    fake = g_apply(state.generator.params)
    x, f = np.asarray(real), np.asarray(fake)
    rec_x, rec_f = np.asarray(d_apply(state.discriminator.params, real)), np.asarray(d_apply(state.discriminator.params, fake))
    l_real = np.abs(x - rec_x).reshape(8, -1).mean(-1).mean()
    l_fake = np.abs(f - rec_f).reshape(8, -1).mean(-1).mean()
    k_next = np.clip(0.3 + 0.5 * (0.7 * l_real - l_fake), 0.0, 1.0)
    np.testing.assert_allclose(metrics["l_real"], l_real, rtol=1e-5)
    np.testing.assert_allclose(metrics["l_fake"], l_fake, rtol=1e-5)
    np.testing.assert_allclose(metrics["m_global"], l_real + abs(0.7 * l_real - l_fake), rtol=1e-5)
    np.testing.assert_allclose(metrics["d_loss"], l_real - 0.3 * l_fake, rtol=1e-5)
    np.testing.assert_allclose(metrics["g_loss"], l_fake, rtol=1e-5)
    np.testing.assert_allclose(new.k_t, k_next, rtol=1e-5)
    assert metrics["k_t"] == pytest.approx(0.3) and metrics["k_t_pinned"] == float(k_next in (0.0, 1.0))
    assert metrics["g_lr"] == pytest.approx(1e-4) and metrics["d_lr"] == pytest.approx(1e-4)

    def d_loss(p):
        lx = jnp.mean(jnp.abs(real - d_apply(p, real)))
        lf = jnp.mean(jnp.abs(fake - d_apply(p, fake)))
        return lx - 0.3 * lf

    def g_loss(p):
        fk = g_apply(p)
        return jnp.mean(jnp.abs(fk - d_apply(state.discriminator.params, fk)))

    d_grads, g_grads = jax.grad(d_loss)(state.discriminator.params), jax.grad(g_loss)(state.generator.params)
    d_want = _adam_first_step(state.discriminator.params, d_grads, 1e-4)
    g_want = _adam_first_step(state.generator.params, g_grads, 1e-4)
    np.testing.assert_allclose(metrics["d_grad_norm"], numpy_global_norm(d_grads), rtol=1e-4)
    np.testing.assert_allclose(metrics["g_grad_norm"], numpy_global_norm(g_grads), rtol=1e-4)
    assert_trees_equal(jax.device_get(new.discriminator.params), jax.device_get(d_want), atol=2e-6)
    assert_trees_equal(jax.device_get(new.generator.params), jax.device_get(g_want), atol=2e-6)


@pytest.mark.parametrize("step, gamma", [(0, 0.5), (3, 1.25), (4, 1.5), (9, 1.5)])
def test_gamma_ramp_moves_linearly_from_gamma_from_to_gamma(step, gamma):
    """With began.gamma_ramp_steps R: gamma_t = g_0 + (gamma - g_0) min(t / R, 1), used by k_t's
    update and M_global of step t and logged as `gamma`; without a ramp nothing is logged."""
    ramp = {"began.gamma": 1.5, "began.gamma_from": 0.5, "began.gamma_ramp_steps": 4, "began.lambda_k": 0.5}
    gan = gans.create(_tiny(**ramp), DIGITS)
    state = gan.init_state(jax.random.PRNGKey(0)).replace(
        k_t=jnp.asarray(0.3, jnp.float32), step=jnp.asarray(step, jnp.int32))
    new, metrics = jax.jit(gan.train_step)(state, gan.example_batch(jax.random.PRNGKey(1), 8))
    metrics = jax.device_get(metrics)
    l_real, l_fake = float(metrics["l_real"]), float(metrics["l_fake"])
    assert metrics["gamma"] == pytest.approx(gamma, rel=1e-6)
    np.testing.assert_allclose(metrics["m_global"], l_real + abs(gamma * l_real - l_fake), rtol=1e-5)
    np.testing.assert_allclose(new.k_t, np.clip(0.3 + 0.5 * (gamma * l_real - l_fake), 0, 1), rtol=1e-5)
    plain = gans.create(_tiny(**{"began.gamma": 1.5}), DIGITS)
    assert "gamma" not in jax.eval_shape(plain.train_step, plain.init_state(jax.random.PRNGKey(0)),
                                         plain.example_batch(jax.random.PRNGKey(1), 8))[1]


def _assert_added_to_one_loss(plain, with_term, term, value, weight, loss):
    """The step with `term` logged it as `value` and added `weight * value` to `loss` ("g_loss"
    or "d_loss") alone: the other loss and the other network's update are the plain step's."""
    (new0, m0), (new1, m1) = plain, with_term
    other, untouched = {"g_loss": ("d_loss", "discriminator"), "d_loss": ("g_loss", "generator")}[loss]
    np.testing.assert_allclose(m1[term], value, rtol=1e-5)
    np.testing.assert_allclose(m1[loss], m0[loss] + weight * value, rtol=1e-5)
    np.testing.assert_allclose(m1[other], m0[other], rtol=1e-6)
    assert term not in m0
    assert_trees_equal(getattr(new1, untouched).params, getattr(new0, untouched).params, atol=0)


def _one_step_without_and_with(overrides, k_t=None):
    """One jitted step of the tiny BEGAN and of the same with `overrides`, from one state and
    one batch of 6: (the algorithm with overrides, state, batch, (state, metrics) without,
    (state, metrics) with)."""
    plain = gans.create(_tiny(), DIGITS)
    changed = gans.create(_tiny(**overrides), DIGITS)
    state = plain.init_state(jax.random.PRNGKey(0))
    if k_t is not None:
        state = state.replace(k_t=jnp.asarray(k_t, jnp.float32))
    batch = plain.example_batch(jax.random.PRNGKey(1), 6)
    without = jax.device_get(jax.jit(plain.train_step)(state, batch))
    return changed, state, batch, without, jax.device_get(jax.jit(changed.train_step)(state, batch))


def test_pull_away_term_enters_g_loss_only():
    """`began.pull_away` w adds w f_PT(D's embeddings of the fakes) to L_G (EBGAN's term): the
    logged term matches a numpy double loop, L_G grows by exactly w times it, L_D and D's update
    are those of the step without it, and G's update is Adam's first step along the new L_G."""
    pushed, state, _, (new0, m0), (new1, m1) = _one_step_without_and_with({"began.pull_away": 0.5})

    parts = pushed.latent.sample(state.step_key(), 6)
    g_apply = lambda p: pushed.generator.apply({"params": p}, pushed.latent.vector(parts))
    d_out = lambda x: pushed.discriminator.apply({"params": state.discriminator.params}, x)
    e = np.asarray(d_out(g_apply(state.generator.params))["embedding"], np.float64)
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    f_pt = sum((unit[i] @ unit[j]) ** 2 for i in range(6) for j in range(6) if i != j) / 30
    _assert_added_to_one_loss((new0, m0), (new1, m1), "pull_away", f_pt, 0.5, "g_loss")

    def g_loss(p):
        out = d_out(g_apply(p))
        l_fake = jnp.mean(jnp.abs(g_apply(p) - out["reconstruction"]))
        emb = out["embedding"] / jnp.linalg.norm(out["embedding"], axis=1, keepdims=True)
        cos2 = jnp.square(emb @ emb.T)
        return l_fake + 0.5 * (jnp.sum(cos2) - jnp.trace(cos2)) / 30

    g_want = _adam_first_step(state.generator.params, jax.grad(g_loss)(state.generator.params), 1e-4)
    assert_trees_equal(new1.generator.params, jax.device_get(g_want), atol=2e-6)


def test_embedding_mmd_enters_g_loss_only():
    """`began.embedding_mmd` w adds w MMD_u^2(Enc(x), Enc(G(z))) to L_G: the logged term matches
    a numpy double loop, L_G grows by exactly w times it, L_D and D's update are those of the
    step without it, and G's update is Adam's first step along the new L_G (the real codes and
    the bandwidth are constants for G)."""
    matched, state, batch, (new0, m0), (new1, m1) = _one_step_without_and_with({"began.embedding_mmd": 2.0})

    real = batch["image"][0]
    parts = matched.latent.sample(state.step_key(), 6)
    g_apply = lambda p: matched.generator.apply({"params": p}, matched.latent.vector(parts))
    d_out = lambda x: matched.discriminator.apply({"params": state.discriminator.params}, x)
    e_real = d_out(real)["embedding"]
    mmd = numpy_gaussian_mmd2(e_real, d_out(g_apply(state.generator.params))["embedding"])
    assert abs(mmd) > 1e-3
    _assert_added_to_one_loss((new0, m0), (new1, m1), "embedding_mmd", mmd, 2.0, "g_loss")

    def g_loss(p):
        fake = g_apply(p)
        out = d_out(fake)
        pooled = jnp.concatenate([e_real, out["embedding"]])
        d2 = jnp.sum(jnp.square(pooled[:, None] - pooled[None]), -1)
        s2 = jax.lax.stop_gradient(jnp.median(d2[np.triu_indices(12, 1)]))
        k = sum(jnp.exp(-d2 / (2 * f * f * s2)) for f in (0.5, 1.0, 2.0)) / 3
        off = lambda b: (jnp.sum(b) - jnp.trace(b)) / 30
        return jnp.mean(jnp.abs(fake - out["reconstruction"])) + 2.0 * (
            off(k[:6, :6]) + off(k[6:, 6:]) - 2 * jnp.mean(k[:6, 6:]))

    g_want = _adam_first_step(state.generator.params, jax.grad(g_loss)(state.generator.params), 1e-4)
    assert_trees_equal(new1.generator.params, jax.device_get(g_want), atol=2e-6)


def test_latent_constraint_enters_d_loss_only():
    """`began.latent_constraint` alpha adds alpha mean|Enc(G(z)) - z| to L_D (BEGAN-CS): the
    logged term matches numpy, L_D grows by exactly alpha times it, L_G and G's update are those
    of the step without it, and D's update is Adam's first step along the new L_D."""
    held, state, batch, (new0, m0), (new1, m1) = _one_step_without_and_with({"began.latent_constraint": 0.1}, k_t=0.2)
    assert held.config.model.h_dim == held.config.model.z_dim

    real = batch["image"][0]
    z = held.latent.sample(state.step_key(), 6)["z"]
    fake = held.generator.apply({"params": state.generator.params}, z)
    d_out = lambda p, x: held.discriminator.apply({"params": p}, x)
    constraint = np.abs(np.asarray(d_out(state.discriminator.params, fake)["embedding"]) - np.asarray(z)).mean()
    _assert_added_to_one_loss((new0, m0), (new1, m1), "latent_constraint", constraint, 0.1, "d_loss")

    def d_loss(p):
        lx = jnp.mean(jnp.abs(real - d_out(p, real)["reconstruction"]))
        out = d_out(p, fake)
        lf = jnp.mean(jnp.abs(fake - out["reconstruction"]))
        return lx - 0.2 * lf + 0.1 * jnp.mean(jnp.abs(out["embedding"] - z))

    d_want = _adam_first_step(state.discriminator.params, jax.grad(d_loss)(state.discriminator.params), 1e-4)
    assert_trees_equal(new1.discriminator.params, jax.device_get(d_want), atol=2e-6)


def test_batch_normalised_generator_trains_on_batch_statistics_and_draws_with_running_ones():
    """`model.g_batch_norm`: G's step normalises by the batch and moves the running statistics
    by PyTorch's momentum 0.1 (flax 0.9); `generate` uses the running ones, so an image does not
    depend on the rest of its batch. D stays without batch norm."""
    gan = gans.create(_tiny(**{"model.g_batch_norm": True}), DIGITS)
    state = gan.init_state(jax.random.PRNGKey(0))
    assert state.generator.batch_stats and not state.discriminator.batch_stats
    batch = gan.example_batch(jax.random.PRNGKey(1), 8)
    new, metrics = jax.jit(gan.train_step)(state, batch)
    assert np.isfinite(float(metrics["g_loss"]))
    vector = gan.latent.vector(gan.latent.sample(state.step_key(), 8))
    _, updates = gan.generator.apply(state.generator.variables, vector, mutable=["batch_stats"])
    assert_trees_equal(jax.device_get(new.generator.batch_stats), jax.device_get(updates["batch_stats"]), atol=1e-6)
    # The first one by hand: the projection's per-channel batch mean and (biased) variance.
    dense = state.generator.params["Dense_0"]
    h = np.asarray(vector @ dense["kernel"] + dense["bias"]).reshape(8, -1, 8)  # [N, base^2, width]
    first = jax.device_get(new.generator.batch_stats["BatchNorm_0"])
    np.testing.assert_allclose(first["mean"], 0.1 * h.mean((0, 1)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(first["var"], 0.9 + 0.1 * h.var((0, 1)), rtol=1e-4)
    parts = gan.latent.sample(jax.random.PRNGKey(2), 4)
    together = gan.generate(new, parts)
    alone = gan.generate(new, jax.tree.map(lambda a: a[:1], parts))
    np.testing.assert_allclose(np.asarray(alone[0]), np.asarray(together[0]), atol=1e-5)
    assert float(jnp.abs(together[0] - together[1]).max()) > 0  # (the z differ)


def test_infobegan_adds_the_information_terms_to_both_losses():
    gan = gans.create(_tiny("infobegan"), DIGITS)
    assert gan.latent.categorical == (10,) and gan.latent.continuous == 2 and gan.latent.noise_prior == "uniform"
    state = gan.init_state(jax.random.PRNGKey(0))
    assert state.discriminator.params["head_q"]["kernel"].shape[-1] == 12  # 10 logits + 2 means
    assert "head_q_hidden" in state.discriminator.params  # InfoGAN's Q: its own dense layer
    batch = gan.example_batch(jax.random.PRNGKey(1), 8)
    new, metrics = jax.jit(gan.train_step)(state, batch)
    metrics = jax.device_get(metrics)
    assert abs(metrics["info_cat"] - np.log(10)) < 0.3  # Q knows nothing yet
    info = metrics["info_cat"] + metrics["info_cont"]  # lambda 1 each; k_0 = 0
    np.testing.assert_allclose(metrics["d_loss"], metrics["l_real"] + info, rtol=1e-5)
    np.testing.assert_allclose(metrics["g_loss"], metrics["l_fake"] + info, rtol=1e-5)
    out = gan.recover_codes(new, batch["image"][0])
    assert out["cat"].shape == (8, 1) and out["cont"].shape == (8, 2) and out["cat_logits"][0].shape == (8, 10)
    # The Q head's own learning rate (began.q_lr), as InfoGAN's.
    gan = gans.create(_tiny("infobegan", **{"began.q_lr": 1e-2, "optim.d_lr": 1e-12}), DIGITS)
    state = gan.init_state(jax.random.PRNGKey(0))
    new, _ = jax.jit(gan.train_step)(state, batch)
    moved = lambda name: float(max(jnp.abs(a - b).max() for a, b in zip(
        jax.tree.leaves(new.discriminator.params[name]), jax.tree.leaves(state.discriminator.params[name]))))
    assert moved("head_q") > 1e-3 and moved("encoder") < 1e-9


def test_learning_rate_halving_plateau_and_floor():
    """began.lr_halve_every halves the rate on a staircase; began.lr_plateau_factor multiplies it
    when the mean M_global of a window stops falling by rtol (optax's reduce_on_plateau); neither
    goes below began.lr_floor. The plateau state stays finite (checkpoints refuse inf)."""
    gan = gans.create(_tiny(**{"began.lr_halve_every": 3, "began.lr_floor": 3e-5}), DIGITS)
    net = gan.init_state(jax.random.PRNGKey(0)).generator
    rates = [float(gan.learning_rate(net, 1e-4, jnp.asarray(s))) for s in (0, 2, 3, 6, 9, 30)]
    np.testing.assert_allclose(rates, [1e-4, 1e-4, 5e-5, 3e-5, 3e-5, 3e-5], rtol=1e-6)

    gan = gans.create(_tiny(**{"began.lr_plateau_factor": 0.5, "began.lr_plateau_window": 2,
                               "began.lr_plateau_patience": 1, "began.lr_floor": 2e-5}), DIGITS)
    net = gan.init_state(jax.random.PRNGKey(0)).generator
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(net.opt_state))
    grads = jax.tree.map(jnp.zeros_like, net.params)
    seen = []
    for value in [3.0, 3.0, 2.0, 2.0, 2.0, 2.0] + [2.0] * 8:  # falls once, then stalls
        net = gan._update(net, grads, jnp.asarray(value))
        seen.append(float(gan.learning_rate(net, 1e-4, jnp.asarray(0))))
    np.testing.assert_allclose(seen[:6], [1e-4] * 5 + [5e-5], rtol=1e-6)  # readings 3, 2, 2: halved
    assert seen[-1] == pytest.approx(2e-5)  # the floor
    tx = gan._optimizer(1e-4)
    assert isinstance(tx, optax.GradientTransformationExtraArgs)


def test_architecture_plan_heads_and_forms():
    assert began_models.began_plan(64) == (8, 4) and began_models.began_plan(128) == (8, 5)
    assert began_models.began_plan(28) == (7, 3) and began_models.began_plan(32, depth=2) == (16, 2)
    with pytest.raises(ValueError, match="halve"):
        began_models.began_plan(28, depth=4)
    config = _tiny("infobegan")
    for impl, down in (("fast", "stride"), ("native", "stride"), ("fast", "pool")):
        config.model.conv_impl, config.model.down = impl, down
        gan = gans.create(config, DIGITS)
        x = jax.random.uniform(jax.random.PRNGKey(0), (2, 28, 28, 1), minval=-1, maxval=1)
        variables = gan.discriminator.init(jax.random.PRNGKey(1), x)
        loss = lambda v: sum(jnp.mean(jnp.sin(y)) for y in jax.tree.leaves(gan.discriminator.apply(v, x)))
        out = gan.discriminator.apply(variables, x)
        assert out["reconstruction"].shape == x.shape and out["embedding"].shape == (2, 8) and out["q"].shape == (2, 12)
        if down == "stride":
            grads = jax.grad(loss)(variables)
            if impl == "fast":
                fast = grads
            else:  # the same map and gradients from the same parameters
                assert_trees_equal(fast, grads, atol=1e-5)
    # The CelebA configs build their 64 and 128 px networks (shapes only).
    for name, side in (("began_celeba64", 64), ("began_celeba128", 128)):
        config = load_config(None, name, variant=None)
        validate(config)
        gan = gans.create(config, DataInfo("celeb_a", (side, side, 3), 0, (), 100))
        z = jax.ShapeDtypeStruct((2, 64), jnp.float32)
        variables = jax.eval_shape(gan.generator.init, jax.random.PRNGKey(0), z)
        assert jax.eval_shape(gan.generator.apply, variables, z).shape == (2, side, side, 3)


# --------------------------------------------------------------------------------------------
# Through launch.py; resume; the mesh; errors.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_name, evals", [
    ("began_mnist", ["fid", "class_coverage/min_fraction", "memorisation/nn_distance"]),
    ("infobegan_mnist", ["code_accuracy", "traversals/c0_slant", "class_coverage/min_fraction"]),
])
def test_launch_tiny_began_configs(repo_root, tmp_path, config_name, evals):
    result = launch(repo_root, f"--config=configs/{config_name}.py:tiny", f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    last = {k: v for r in rows for k, v in r.items()}
    for key in [f"eval/{e}" for e in evals] + ["train/m_global", "train/k_t", "train/l_real", "train/g_lr"]:
        assert np.isfinite(last[key]), key
    assert any(n.startswith("curves") for n in os.listdir(tmp_path / "evals")) and os.listdir(tmp_path / "samples")
    if config_name == "infobegan_mnist":  # job=synthesize names each code by Q's reading of real digits
        from ganjax import synthesize

        config = load_config(None, config_name)
        config.job, config.jobs.synthesize.num_per_class = "synthesize", 2
        summary = synthesize.run(config, str(tmp_path))
        assert summary["mode"] == "categorical_code" and len(summary["code_to_class"]) == 10
        assert 0.0 < summary["code_accuracy"] <= 1.0


def test_resume_is_bit_exact_with_k_t_and_four_devices_match_one(tmp_path):
    config = load_config(None, "began_mnist")
    config.evals = {}
    config.train.checkpoint_every = 100
    config.mesh.num_devices = 1
    config.began.k_0 = 0.5  # k_t moves both ways from the start
    config.began.lr_halve_every = 4  # both decays' states are in the checkpoint
    config.began.lr_plateau_factor, config.began.lr_plateau_window, config.began.lr_plateau_patience = 0.5, 2, 1
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    config.train.num_steps = 3
    train.train_and_evaluate(config, str(tmp_path / "resumed"))
    config.train.num_steps = 6
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert_trees_equal(jax.device_get(jax.tree.leaves(straight)), jax.device_get(jax.tree.leaves(resumed)))  # k_t, optimizer states
    assert float(straight.k_t) != 0.5
    rows = [json.loads(l) for l in open(tmp_path / "straight" / "metrics.jsonl")]
    halved = config.optim.g_lr / 2  # from step 4 on (the plateau decay may have cut it further)
    assert [r["train/g_lr"] for r in rows if "train/g_lr" in r][-1] <= halved * (1 + 1e-6)
    assert jax.device_count() == 4
    config.mesh.num_devices = 4
    four = train.train_and_evaluate(config, str(tmp_path / "four"))
    assert_trees_match_across_devices(jax.device_get(straight.generator.params), jax.device_get(four.generator.params),
                                      max_drift=2 * config.optim.g_lr * config.train.num_steps)
    np.testing.assert_allclose(float(four.k_t), float(straight.k_t), atol=1e-6)


@pytest.mark.parametrize("name, overrides, needle", [
    ("began", {"began.gamma": 0.0}, "began.gamma must be > 0"),
    ("began", {"began.gamma": -0.5}, "began.gamma must be > 0"),
    ("began", {"began.gamma_ramp_steps": 100}, "gamma_from must be > 0"),
    ("began", {"began.gamma_ramp_steps": -1, "began.gamma_from": 1.0}, "gamma_ramp_steps"),
    ("began", {"began.lambda_k": -0.001}, "lambda_k must be >= 0"),
    ("began", {"began.k_0": 2.0}, "k_0 must be in"),
    ("began", {"began.pull_away": -0.1}, "pull_away must be >= 0"),
    ("began", {"began.latent_constraint": -0.1}, "latent_constraint must be >= 0"),
    ("began", {"began.embedding_mmd": -1.0}, "embedding_mmd must be >= 0"),
    ("began", {"began.pull_away": 0.6, "data.batch_size": 1}, r"began.pull_away .* needs data.batch_size >= 2 \(got 1\)"),
    ("began", {"began.embedding_mmd": 1.0, "data.batch_size": 1}, r"began.embedding_mmd .* needs data.batch_size >= 2"),
    ("began", {"began.latent_constraint": 0.1, "model.h_dim": 16}, "must equal model.z_dim"),
    ("began", {"began.lr_plateau_factor": 1.0}, "lr_plateau_factor"),
    ("began", {"gan.d_steps": 5}, "BEGAN does not use"),
    ("began", {"model.down": "max"}, "model.down"),
    ("infobegan", {"began.categorical": 1}, "at least 2 values"),
    ("infobegan", {"began.cont_std": "free"}, "cont_std"),
])
def test_bad_began_configs_are_config_errors(name, overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        gans.create(_tiny(name, **overrides), DIGITS)


def test_began_config_errors_are_one_line_and_code_evaluators_need_a_q_head(repo_root, tmp_path):
    result = launch(repo_root, "--config=configs/began_mnist.py:tiny", f"--workdir={tmp_path / 'w'}",
                    "--config.began.gamma=-0.5")
    errors = [l for l in result.stderr.splitlines() if l.startswith("ganjax: error:")]
    assert result.returncode == 2 and len(errors) == 1 and "began.gamma" in errors[0], result.stderr[-2000:]
    assert not (tmp_path / "w").exists()
    from ganjax import evaluators

    config = load_config(None, "began_mnist")
    config.evals = {"codes": evaluators.entry("code_accuracy")}
    with pytest.raises(ConfigError, match="needs a Q head"):
        train.train_and_evaluate(config, str(tmp_path / "w"))
