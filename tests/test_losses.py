"""Tests of ganjax.losses against hand-computed values or independent numpy/scipy/TF formulas.

JAX computes in float32 here; references are float64 numpy. Unless a comment says otherwise,
the tolerance is rtol=1e-5, atol=1e-6 (float32 round-off on O(1) values).
"""

import functools
import math
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from ganjax import losses
from tests.helpers import numpy_gaussian_mmd2

RTOL, ATOL = 1e-5, 1e-6


def jit_call(fn, *args, **kwargs):
    """fn(*args, **kwargs) under jax.jit, as training calls it (and one compilation is several
    times faster than many eager ops). Positional arrays (or pytrees of arrays) are traced;
    everything else (Python numbers, callables, keyword arguments) is bound as a constant."""
    def is_array_tree(a):
        leaves = jax.tree.leaves(a)
        return bool(leaves) and all(isinstance(x, (np.ndarray, jax.Array)) for x in leaves)

    traced = [i for i, a in enumerate(args) if is_array_tree(a)]

    def inner(*values):
        full = list(args)
        for i, v in zip(traced, values):
            full[i] = v
        return fn(*full, **kwargs)

    return jax.jit(inner)(*[args[i] for i in traced])


class _Jitted:
    """`J.name(...)` is `jit_call(losses.name, ...)`."""

    def __getattr__(self, name):
        return functools.partial(jit_call, getattr(losses, name))


J = _Jitted()


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol)


def np_log_sigmoid(x):
    x = np.asarray(x, np.float64)
    return -np.log1p(np.exp(-x))


def np_bce(logits, targets):
    """-[t log s + (1 - t) log(1 - s)], written with probabilities (independent of softplus)."""
    s = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    t = np.asarray(targets, np.float64)
    return -(t * np.log(s) + (1.0 - t) * np.log(1.0 - s))


# ------------------------------------------------------------------------------------------
# Adversarial losses.
# ------------------------------------------------------------------------------------------

REAL = np.array([2.0, -1.0, 0.5, 3.0], np.float32)
FAKE = np.array([-2.0, 0.0, 1.5, -0.5], np.float32)


def test_bce_with_logits_elementwise():
    logits = np.array([[-3.0, 0.0], [1.0, 4.0]], np.float32)
    targets = np.array([[0.0, 1.0], [0.9, 0.0]], np.float32)
    close(J.binary_cross_entropy_with_logits(logits, targets), np_bce(logits, targets))
    # Logit 0 is log 2 whatever the target.
    close(J.binary_cross_entropy_with_logits(jnp.zeros(3), 0.3), [math.log(2.0)] * 3)


def test_minimax_discriminator_loss_hand_values():
    # Logits 0: log 2 + log 2.
    close(J.minimax_discriminator_loss(jnp.zeros(5), jnp.zeros(5)), 2 * math.log(2.0))
    expected = np.mean(-np_log_sigmoid(REAL)) + np.mean(-np.log(1 - 1 / (1 + np.exp(-FAKE))))
    close(J.minimax_discriminator_loss(REAL, FAKE), expected)


def test_label_smoothing_only_changes_real_targets():
    # One-sided: real target 0.9, fakes still 0. BCE(2, 0.9) = softplus(2) - 1.8 = 0.3269280...
    close(J.minimax_discriminator_loss(jnp.array([2.0]), jnp.array([-30.0]), 0.9),
          math.log1p(math.exp(2.0)) - 1.8 + math.log1p(math.exp(-30.0)))
    expected = np.mean(np_bce(REAL, 0.9)) + np.mean(np_bce(FAKE, 0.0))
    close(J.minimax_discriminator_loss(REAL, FAKE, real_target=0.9), expected)


def test_minimax_and_non_saturating_generator_losses():
    # Saturating: E[log(1 - sigma(l))]; non-saturating: -E[log sigma(l)].
    close(J.minimax_generator_loss(FAKE), np.mean(np.log(1 - 1 / (1 + np.exp(-FAKE)))))
    close(J.non_saturating_generator_loss(FAKE), np.mean(-np_log_sigmoid(FAKE)))
    close(J.non_saturating_generator_loss(jnp.zeros(2)), math.log(2.0))
    # The saturating loss has a vanishing gradient when D rejects fakes (l << 0); the
    # non-saturating one does not: d/dl at l = -10 is sigma(-10) vs sigma(-10) - 1.
    g_sat = jax.grad(lambda l: J.minimax_generator_loss(l))(jnp.array([-10.0]))
    g_ns = jax.grad(lambda l: J.non_saturating_generator_loss(l))(jnp.array([-10.0]))
    s = 1 / (1 + math.exp(10.0))
    close(g_sat, [-s], atol=1e-9)
    close(g_ns, [s - 1.0])


def test_least_squares_losses_with_a_b_c():
    real, fake = jnp.array([1.0, 0.0]), jnp.array([0.5, -1.0])
    # a=-1, b=1: 1/2 * mean([0, 1]) + 1/2 * mean([2.25, 0]) = 0.25 + 0.5625.
    close(J.least_squares_discriminator_loss(real, fake, a=-1.0, b=1.0), 0.8125)
    # Defaults a=0, b=1: 1/2 * 0.5 + 1/2 * mean([0.25, 1]) = 0.25 + 0.3125.
    close(J.least_squares_discriminator_loss(real, fake), 0.5625)
    # c=0: 1/2 * mean([0.25, 1]); c=1 default: 1/2 * mean([0.25, 4]).
    close(J.least_squares_generator_loss(fake, c=0.0), 0.3125)
    close(J.least_squares_generator_loss(fake), 1.0625)


def test_wasserstein_losses():
    close(J.wasserstein_critic_loss(REAL, FAKE), FAKE.mean() - REAL.mean())
    close(J.wasserstein_critic_loss(jnp.array([3.0, 1.0]), jnp.array([-1.0, 0.0])), -2.5)
    close(J.wasserstein_generator_loss(jnp.array([-1.0, 0.0])), 0.5)


def test_hinge_losses():
    real, fake = jnp.array([2.0, 0.5, -1.0]), jnp.array([-2.0, 0.0, 0.5])
    # relu(1 - r) = [0, .5, 2]; relu(1 + f) = [0, 1, 1.5]; each mean 2.5 / 3.
    close(J.hinge_discriminator_loss(real, fake), 5.0 / 3.0)
    close(J.hinge_generator_loss(fake), 0.5)


def test_adversarial_registry():
    assert set(losses.ADVERSARIAL_LOSSES) == {
        "minimax", "non_saturating", "least_squares", "wasserstein", "hinge"}
    ns = losses.get_adversarial_loss("non_saturating")
    assert ns.generator is losses.non_saturating_generator_loss and ns.accepts_real_target
    close(ns.discriminator(REAL, FAKE, real_target=0.9),
          losses.minimax_discriminator_loss(REAL, FAKE, 0.9))
    # least_squares maps real_target to b (soft real labels 0.9 of report 001), a = 0.
    ls = losses.get_adversarial_loss("least_squares")
    close(ls.discriminator(jnp.array([0.9]), jnp.array([0.0]), real_target=0.9), 0.0, atol=1e-7)
    close(ls.discriminator(REAL, FAKE),
          J.least_squares_discriminator_loss(REAL, FAKE, a=0.0, b=1.0))
    assert not losses.get_adversarial_loss("wasserstein").accepts_real_target
    with pytest.raises(ValueError, match="hinge"):
        losses.get_adversarial_loss("wgan")


# ------------------------------------------------------------------------------------------
# Lipschitz constraints.
# ------------------------------------------------------------------------------------------


def test_gradient_penalty_linear_critic_is_exact():
    # f(x) = <w, x>: grad_x f = w everywhere, so GP = (||w|| - 1)^2 whatever eps is.
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(4, 4, 3)), jnp.float32)
    critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
    real = jnp.asarray(rng.normal(size=(6, 4, 4, 3)), jnp.float32)
    fake = jnp.asarray(rng.normal(size=(6, 4, 4, 3)), jnp.float32)
    norm = float(np.linalg.norm(np.asarray(w, np.float64)))
    gp = J.gradient_penalty(critic, real, fake, jax.random.key(1))
    close(gp, (norm - 1.0) ** 2, rtol=1e-5)
    # The norm is over the whole flattened example (not per channel): scores [N, 1] work too.
    critic_col = lambda x: critic(x)[:, None]
    close(J.gradient_penalty(critic_col, real, fake, jax.random.key(2), target_norm=2.0),
          (norm - 2.0) ** 2, rtol=1e-5)


def test_gradient_penalty_gradient_wrt_critic_params():
    # GP(w) = (||w|| - 1)^2  =>  dGP/dw = 2 (||w|| - 1) w / ||w||  (second-order autodiff).
    w = jnp.array([3.0, 4.0])
    real, fake = jnp.ones((3, 2)), jnp.zeros((3, 2))
    grad = jax.grad(
        lambda w: J.gradient_penalty(lambda x: x @ w, real, fake, jax.random.key(0))
    )(w)
    close(grad, 2 * (5.0 - 1.0) * np.array([3.0, 4.0]) / 5.0, rtol=1e-5)


def test_gradient_penalty_quadratic_critic_vs_hand():
    # f(x) = sum(x^2): grad = 2 x_hat, x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per example.
    rng = np.random.default_rng(3)
    real = rng.normal(size=(5, 3, 2)).astype(np.float32)
    fake = rng.normal(size=(5, 3, 2)).astype(np.float32)
    key = jax.random.key(7)
    gp = J.gradient_penalty(lambda x: jnp.sum(x**2, axis=(1, 2)), real, fake, key)
    eps = np.asarray(jax.random.uniform(key, (5, 1, 1)), np.float64)  # the same draw
    assert np.all((eps >= 0) & (eps <= 1)) and np.ptp(eps) > 0  # one eps per example
    x_hat = eps * real + (1 - eps) * fake
    norms = 2 * np.sqrt((x_hat.reshape(5, -1) ** 2).sum(-1))
    close(gp, np.mean((norms - 1.0) ** 2), rtol=1e-5)


def test_weight_clipping_clips_after_update():
    c = 0.01
    params = {"w": jnp.array([0.5, -0.5, 0.005, 0.0]), "b": jnp.array([0.009])}
    grads = {"w": jnp.array([0.0, 0.0, 0.01, -0.02]), "b": jnp.array([-1.0])}
    tx = optax.chain(optax.sgd(0.1), losses.weight_clipping(c))
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    new = optax.apply_updates(params, updates)
    # p - 0.1 g, then clip to [-c, c]; atol 1e-8: p + (clip(p+u) - p) is exact only up to
    # float32 round-off (one ulp of 0.5 is 6e-8, of 0.01 about 1e-9).
    close(new["w"], [0.01, -0.01, 0.004, 0.002], atol=1e-8)
    close(new["b"], [0.01], atol=1e-8)
    with pytest.raises(ValueError, match="params"):
        tx.update(grads, state)


# ------------------------------------------------------------------------------------------
# Auxiliary classification (ACGAN) and categorical codes.
# ------------------------------------------------------------------------------------------


def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def test_categorical_cross_entropy_vs_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 7)).astype(np.float32) * 3
    labels = np.array([0, 3, 6, 3, 1, 2])
    ce = -np_log_softmax(logits)[np.arange(6), labels]
    close(J.categorical_cross_entropy(logits, labels), ce.mean())
    # Uniform logits over K classes: log K.
    close(J.categorical_cross_entropy(jnp.zeros((2, 10)), jnp.array([1, 9])), math.log(10))
    # Class weights normalise by the weights used (PyTorch CrossEntropyLoss(weight=...)).
    cw = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 1.0, 10.0])
    w = cw[labels]
    close(J.categorical_cross_entropy(logits, labels, class_weights=cw),
          (w * ce).sum() / w.sum())
    mask = np.array([1, 0, 1, 1, 0, 1])
    close(J.categorical_cross_entropy(logits, labels, mask=mask), ce[mask == 1].mean())
    close(J.categorical_cross_entropy(logits, labels, class_weights=cw, mask=mask),
          (w * mask * ce).sum() / (w * mask).sum())
    close(J.categorical_cross_entropy(logits, labels, mask=np.zeros(6)), 0.0)


def test_multilabel_cross_entropy_vs_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 40)).astype(np.float32) * 2  # CelebA: 40 attributes
    labels = rng.random((4, 40)) > 0.5  # tfds gives booleans
    bce = np_bce(logits, labels.astype(np.float64))
    close(J.multilabel_cross_entropy(logits, labels), bce.mean())
    aw = rng.random(40)
    close(J.multilabel_cross_entropy(logits, labels, attribute_weights=aw),
          (aw * bce).sum() / (np.broadcast_to(aw, bce.shape)).sum())
    subset = np.zeros(40)
    subset[[8, 20, 31]] = 1  # condition on three attributes only
    close(J.multilabel_cross_entropy(logits, labels, mask=subset), bce[:, subset == 1].mean())


# ------------------------------------------------------------------------------------------
# InfoGAN.
# ------------------------------------------------------------------------------------------


def test_gaussian_nll_vs_scipy():
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(5, 3)).astype(np.float32)
    log_std = rng.normal(size=(5, 3)).astype(np.float32) * 0.5
    codes = rng.uniform(-1, 1, size=(5, 3)).astype(np.float32)
    ref = -scipy.stats.norm.logpdf(codes, mean, np.exp(log_std.astype(np.float64)))
    close(J.gaussian_nll(mean, log_std, codes), ref.sum(-1).mean())
    # Scalar log_std broadcasts; the exact-mean value is D * (log sigma + 0.5 log 2 pi) > 0 here.
    close(J.gaussian_nll(codes, 0.0, codes), 3 * 0.5 * math.log(2 * math.pi))
    ref1 = -scipy.stats.norm.logpdf(codes, mean, math.exp(0.3))
    close(J.gaussian_nll(mean, 0.3, codes), ref1.sum(-1).mean())


def test_gaussian_nll_gradient_sign():
    # Minimising the NLL pulls the mean toward the code: d/dmu = (mu - c) / (N sigma^2).
    g = jax.grad(lambda m: J.gaussian_nll(m, jnp.log(2.0), jnp.array([[1.0]])))(
        jnp.array([[0.0]]))
    close(g, [[-1.0 / 4.0]])


def test_fixed_std_gaussian_and_noise_recovery():
    mean = jnp.array([[0.0, 1.0], [2.0, -1.0]])
    codes = jnp.array([[1.0, 1.0], [0.0, 0.0]])
    # 0.5 * sum_d (c - mu)^2 per example: [0.5, 2.5] -> mean 1.5.
    close(J.fixed_std_gaussian_loss(mean, codes), 1.5)
    close(J.fixed_std_gaussian_loss(mean, codes, std=2.0), 1.5 / 4)
    # Equals the Gaussian NLL with sigma fixed, minus its constant D (log sigma + 0.5 log 2pi).
    const = 2 * (math.log(2.0) + 0.5 * math.log(2 * math.pi))
    close(J.fixed_std_gaussian_loss(mean, codes, std=2.0),
          float(J.gaussian_nll(mean, math.log(2.0), codes)) - const)
    close(J.noise_recovery_loss(mean, codes), 1.5)


def test_infogan_info_loss_combines_terms():
    rng = np.random.default_rng(4)
    n = 8
    cat_logits = rng.normal(size=(n, 10)).astype(np.float32)
    cat = rng.integers(0, 10, n)
    cont_mean = rng.normal(size=(n, 2)).astype(np.float32)
    cont = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    z_hat = rng.normal(size=(n, 62)).astype(np.float32)
    z = rng.uniform(-1, 1, (n, 62)).astype(np.float32)
    ce = (-np_log_softmax(cat_logits)[np.arange(n), cat]).mean()
    l2_cont = 0.5 * ((cont - cont_mean) ** 2).sum(-1).mean()
    l2_noise = 0.5 * ((z - z_hat) ** 2).sum(-1).mean()
    # Defaults: lambda 1 for codes, 0.1 for noise (report 000).
    close(J.infogan_info_loss(cat_logits, cat, cont_mean, cont, predicted_noise=z_hat,
                                   noise=z), ce + l2_cont + 0.1 * l2_noise, rtol=2e-5)
    close(J.infogan_info_loss(cat_logits, cat, cont_mean, cont, lambda_categorical=2.0,
                                   lambda_continuous=0.5), 2 * ce + 0.5 * l2_cont)
    # With a predicted log-std the continuous term is the Gaussian NLL.
    log_std = np.full((n, 2), -0.5, np.float32)
    nll = -scipy.stats.norm.logpdf(cont, cont_mean, math.exp(-0.5)).sum(-1).mean()
    close(J.infogan_info_loss(continuous_mean=cont_mean, continuous_codes=cont,
                                   continuous_log_std=log_std), nll)
    # Several categorical codes: a list of heads with an [N, n_codes] code array, or a list.
    logits2 = rng.normal(size=(n, 8)).astype(np.float32)
    cat2 = rng.integers(0, 8, n)
    ce2 = (-np_log_softmax(logits2)[np.arange(n), cat2]).mean()
    close(J.infogan_info_loss([cat_logits, logits2], np.stack([cat, cat2], 1)), ce + ce2)
    close(J.infogan_info_loss([cat_logits, logits2], [cat, cat2]), ce + ce2)
    close(J.infogan_info_loss(), 0.0)


# ------------------------------------------------------------------------------------------
# BEGAN.
# ------------------------------------------------------------------------------------------


def test_began_autoencoder_loss_per_example():
    v = jnp.array([[[[1.0], [-1.0]], [[0.5], [0.0]]], [[[0.0], [0.0]], [[0.0], [0.0]]]])
    d = jnp.array([[[[0.0], [-1.0]], [[1.0], [0.5]]], [[[0.2], [-0.2]], [[0.0], [0.4]]]])
    loss = J.began_autoencoder_loss(v, d)
    assert loss.shape == (2,)
    close(loss, [(1 + 0 + 0.5 + 0.5) / 4, (0.2 + 0.2 + 0 + 0.4) / 4])
    close(J.began_autoencoder_loss(v, d, eta=2.0),
          [(1 + 0 + 0.25 + 0.25) / 4, (0.04 + 0.04 + 0 + 0.16) / 4])


def test_began_d_and_g_losses_and_k_gets_no_gradient():
    real, fake = jnp.array([0.2, 0.4]), jnp.array([0.1, 0.3])
    close(J.began_discriminator_loss(real, fake, 0.5), 0.3 - 0.5 * 0.2)
    close(J.began_generator_loss(fake), 0.2)
    grad_k = jax.grad(lambda k: J.began_discriminator_loss(real, fake, k))(0.5)
    assert float(grad_k) == 0.0
    grad_fake = jax.grad(lambda f: J.began_discriminator_loss(real, f, 0.5))(fake)
    close(grad_fake, [-0.25, -0.25])  # -k_t / N


def test_began_k_update_interior_and_both_clip_ends():
    # Interior: 0.3 + 0.001 (0.5 * 0.2 - 0.05) = 0.30005.
    close(J.began_k_update(0.3, jnp.array([0.1, 0.3]), jnp.array([0.05]), 0.5, 0.001),
          0.30005)
    # Lower end: 0 + 0.001 * (0.5 * 0.1 - 0.9) < 0 -> 0 (k_0 = 0 with G losing).
    close(J.began_k_update(0.0, jnp.array([0.1]), jnp.array([0.9])), 0.0)
    # Upper end: 0.99 + 0.1 * (0.75 * 1.0 - 0.1) = 1.055 -> 1.
    close(J.began_k_update(0.99, jnp.array([1.0]), jnp.array([0.1]), 0.75, 0.1), 1.0)
    g = jax.grad(lambda r: J.began_k_update(0.3, r, jnp.array([0.05])))(jnp.array([0.2]))
    assert float(jnp.abs(g).sum()) == 0.0


def test_began_convergence_measure():
    # 0.4 + |0.5 * 0.4 - 0.3| = 0.5; 0.4 + |0.5 * 0.4 - 0.1| = 0.5 too (absolute value).
    close(J.began_convergence(jnp.array([0.4]), jnp.array([0.3]), 0.5), 0.5)
    close(J.began_convergence(jnp.array([0.2, 0.6]), jnp.array([0.1]), 0.5), 0.5)
    close(J.began_convergence(1.0, 0.7, 0.7), 1.0)


def test_gaussian_mmd2_closed_form_and_a_double_loop():
    """Unbiased MMD^2 with Gaussian kernels at the median distance s times (0.5, 1, 2)."""
    # n copies of a against n copies of b, |a - b|^2 = 3: within-sample kernels are 1, and the
    # median pairwise distance is |a - b| (n^2 cross pairs outnumber the n(n-1) zero pairs), so
    # MMD^2 = 2 - 2 mean_f exp(-1 / (2 f^2)).
    want = 2 - 2 * np.mean([np.exp(-1 / (2 * f * f)) for f in (0.5, 1.0, 2.0)])
    close(J.gaussian_mmd2(jnp.zeros((16, 3)), jnp.ones((16, 3))), want)
    # One kernel width (factor 1) by closed form: 2 - 2 exp(-1/2).
    close(J.gaussian_mmd2(jnp.zeros((4, 2)), jnp.full((5, 2), 0.7), (1.0,)), 2 - 2 * np.exp(-0.5))
    # Random samples of unequal sizes against float64 double loops (tests/helpers.py).
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.3, 1.2, size=(5, 5))
    close(jit_call(J.gaussian_mmd2, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)), numpy_gaussian_mmd2(x, y))
    # The same distribution: near 0 (unbiased: either sign), far below a shifted one; scale-free.
    same = J.gaussian_mmd2(jnp.asarray(rng.normal(size=(64, 8))), jnp.asarray(rng.normal(size=(64, 8))))
    shifted = J.gaussian_mmd2(jnp.asarray(x[:5]), jnp.asarray(x[:5] + 2.0))
    assert abs(float(same)) < 0.02 < float(shifted)
    close(J.gaussian_mmd2(jnp.asarray(x[:5] * 1e3), jnp.asarray((x[:5] + 2.0) * 1e3)), shifted)
    g = jax.grad(lambda b: J.gaussian_mmd2(jnp.zeros((3, 2)), b))(jnp.ones((3, 2)))
    assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0
    with pytest.raises(ValueError, match="at least 2 samples"):
        J.gaussian_mmd2(jnp.zeros((1, 2)), jnp.zeros((3, 2)))


def test_pull_away_term_closed_forms_and_a_double_loop():
    # Orthogonal codes: 0; one code repeated (any scale): 1; a zero code: orthogonal to all.
    close(J.pull_away_term(jnp.eye(4)), 0.0)
    close(J.pull_away_term(jnp.array([[1.0, 2.0], [3.0, 6.0], [-0.5, -1.0]])), 1.0)
    # [1, 0], [1, 1], [0, 0]: cos^2 = 1/2 for the one non-zero pair, counted twice, over 3 * 2.
    close(J.pull_away_term(jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])), 2 * 0.5 / 6)
    assert np.isfinite(np.asarray(jax.grad(J.pull_away_term)(jnp.array([[1.0, 0.0], [0.0, 0.0]])))).all()
    # Random codes against a float64 double loop over i != j (EBGAN's Eq. 6 as written).
    e = np.random.default_rng(0).normal(size=(6, 5))
    ref = sum((e[i] @ e[j] / np.linalg.norm(e[i]) / np.linalg.norm(e[j])) ** 2
              for i in range(6) for j in range(6) if i != j) / (6 * 5)
    close(jit_call(J.pull_away_term, jnp.asarray(e, jnp.float32)), ref)
    # It pushes codes apart: a gradient step on a near-repeated batch lowers it.
    near = jnp.asarray(e[:1] + 0.1 * e[1:4], jnp.float32)
    grad = jax.grad(J.pull_away_term)(near)
    assert float(J.pull_away_term(near - 0.5 * grad)) < float(J.pull_away_term(near))
    with pytest.raises(ValueError, match="at least 2"):
        J.pull_away_term(jnp.ones((1, 3)))


# ------------------------------------------------------------------------------------------
# CycleGAN.
# ------------------------------------------------------------------------------------------


def test_cycle_and_identity_l1():
    a = jnp.array([[1.0, -1.0], [0.0, 0.5]])
    b = jnp.array([[0.0, -1.0], [1.0, 0.0]])
    close(J.cycle_consistency_loss(a, b), (1 + 0 + 1 + 0.5) / 4)
    close(J.identity_loss(a, b), (1 + 0 + 1 + 0.5) / 4)
    close(J.l1_loss(b, b), 0.0)


def _cycle_example():
    # N = 2 examples of 2x1x1 pixels, features of 3 values.
    rec = np.array([[[[0.5]], [[-0.5]]], [[[1.0]], [[-0.2]]]], np.float32)
    orig = np.array([[[[0.0]], [[0.5]]], [[[0.0]], [[0.0]]]], np.float32)
    f_rec = np.array([[0.0, 2.0, 2.0], [0.0, 0.0, 0.0]], np.float32)
    f_orig = np.array([[1.0, 1.0, 1.0], [0.2, -0.2, 0.2]], np.float32)
    d_a = np.array([0.9, 0.5], np.float32)
    return rec, orig, f_rec, f_orig, d_a


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_weighted_cycle_loss_by_hand(gamma):
    rec, orig, f_rec, f_orig, d_a = _cycle_example()
    # Per example: pixel L1 means [(0.5 + 1.0)/2, (1.0 + 0.2)/2] = [0.75, 0.6];
    # feature L1 means [(1 + 1 + 1)/3, (0.2 + 0.2 + 0.2)/3] = [1.0, 0.2].
    pix, feat = np.array([0.75, 0.6]), np.array([1.0, 0.2])
    expected = np.mean(d_a * (gamma * feat + (1 - gamma) * pix))
    hand = {0.0: (0.9 * 0.75 + 0.5 * 0.6) / 2,
            0.5: (0.9 * 0.875 + 0.5 * 0.4) / 2,
            1.0: (0.9 * 1.0 + 0.5 * 0.2) / 2}[gamma]
    assert abs(expected - hand) < 1e-7  # d_a is float32: 0.9 is off by ~1e-8
    close(J.weighted_cycle_loss(rec, orig, f_rec, f_orig, d_a, gamma), hand)


def test_weighted_cycle_loss_special_cases_and_gradients():
    rec, orig, f_rec, f_orig, d_a = _cycle_example()
    # gamma = 0 and D_A(a) = 1: the plain cycle-consistency loss.
    close(J.weighted_cycle_loss(rec, orig, f_rec, f_orig, np.ones(2), 0.0),
          J.cycle_consistency_loss(rec, orig))
    # A PatchGAN map [N, h, w, 1] is averaged into one weight per example.
    patch = np.stack([np.full((2, 2, 1), 0.9), np.array([[[0.2], [0.8]], [[0.5], [0.5]]])])
    close(J.weighted_cycle_loss(rec, orig, f_rec, f_orig, patch.astype(np.float32), 0.5),
          J.weighted_cycle_loss(rec, orig, f_rec, f_orig, d_a, 0.5))
    # D_A(a) is a constant weight: no gradient reaches it.
    g_d = jax.grad(lambda d: J.weighted_cycle_loss(rec, orig, f_rec, f_orig, d, 0.5))(
        jnp.asarray(d_a))
    np.testing.assert_array_equal(np.asarray(g_d), 0.0)
    # Gradient w.r.t. F(G(a)): w_i (1 - gamma) sign(rec - orig) / (N * pixels).
    g_rec = jax.grad(lambda r: J.weighted_cycle_loss(r, orig, f_rec, f_orig, d_a, 0.5))(
        jnp.asarray(rec))
    expected = (d_a[:, None, None, None] * 0.5 * np.sign(rec - orig)) / (2 * 2)
    close(g_rec, expected)
    # Gradient w.r.t. f(F(G(a))): w_i gamma sign(diff) / (N * features).
    g_f = jax.grad(lambda f: J.weighted_cycle_loss(rec, orig, f, f_orig, d_a, 0.5))(
        jnp.asarray(f_rec))
    close(g_f, d_a[:, None] * 0.5 * np.sign(f_rec - f_orig) / (2 * 3))


def test_weighted_cycle_gamma_ramp():
    g = J.weighted_cycle_gamma
    close([g(0, 100), g(25, 100), g(50, 100), g(100, 100), g(250, 100), g(-5, 100)],
          [0.0, 0.25, 0.5, 1.0, 1.0, 0.0])
    close(g(7, 0), 1.0)
    close(jax.jit(lambda s: g(s, 10))(jnp.asarray(3)), 0.3)


# ------------------------------------------------------------------------------------------
# Reconstruction J.
# ------------------------------------------------------------------------------------------


def test_mse_loss():
    close(J.mse_loss(jnp.array([[1.0, 2.0], [0.0, -1.0]]), jnp.array([[0.0, 0.0], [0.0, 1.0]])),
          (1 + 4 + 0 + 4) / 4)


def test_feature_distance_loss_vs_numpy():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    y = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    w = rng.normal(size=(2, 5)).astype(np.float32)

    def feature_fn(img):  # two "layers": a linear map on pixels and a pooled vector
        return [jnp.tanh(img @ w), jnp.mean(img, axis=(1, 2))]

    fx = [np.tanh(x.astype(np.float64) @ w), x.mean(axis=(1, 2))]
    fy = [np.tanh(y.astype(np.float64) @ w), y.mean(axis=(1, 2))]
    sq = [((a - b) ** 2).reshape(3, -1).mean(-1) for a, b in zip(fx, fy)]
    ab = [np.abs(a - b).reshape(3, -1).mean(-1) for a, b in zip(fx, fy)]
    close(J.feature_distance_loss(x, y, feature_fn), (sq[0] + sq[1]).mean())
    close(J.feature_distance_loss(x, y, feature_fn, power=1.0), (ab[0] + ab[1]).mean())
    close(J.feature_distance_loss(x, y, feature_fn, layer_weights=[0.5, 2.0]),
          (0.5 * sq[0] + 2.0 * sq[1]).mean())
    # A feature_fn returning one array; identity features reduce to the MSE.
    close(J.feature_distance_loss(x, y, lambda v: v), J.mse_loss(x, y))
    with pytest.raises(ValueError, match="layer weights"):
        J.feature_distance_loss(x, y, feature_fn, layer_weights=[1.0])


def test_reconstruction_registry():
    x, y = jnp.ones((2, 3)), jnp.zeros((2, 3))
    close(losses.get_reconstruction_loss("mse")(x, y), 1.0)
    close(losses.get_reconstruction_loss("l1")(2 * x, y), 2.0)
    close(losses.get_reconstruction_loss("feature", feature_fn=lambda v: 3 * v, power=1.0)(x, y),
          3.0)
    with pytest.raises(ValueError, match="feature_fn"):
        losses.get_reconstruction_loss("feature")
    with pytest.raises(ValueError, match="ms_ssim"):
        losses.get_reconstruction_loss("vgg")


def test_ssim_losses_call_the_metric_module(monkeypatch):
    # Plumbing only (independent of ganjax.metrics.ssim): 1 - batch mean, arguments forwarded.
    calls = {}

    def fake_ssim(a, b, max_val, **kw):
        calls["ssim"] = (max_val, kw)
        return jnp.array([0.5, 0.7])

    def fake_ms_ssim(a, b, max_val, **kw):
        calls["ms_ssim"] = (max_val, kw)
        return jnp.array([0.2, 0.4])

    fake = types.ModuleType("ganjax.metrics.ssim")
    fake.ssim, fake.ms_ssim = fake_ssim, fake_ms_ssim
    monkeypatch.setitem(sys.modules, "ganjax.metrics.ssim", fake)
    x = jnp.zeros((2, 8, 8, 1))
    close(J.ssim_loss(x, x), 0.4)
    assert calls["ssim"] == (2.0, dict(filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03))
    close(J.ms_ssim_loss(x, x, max_val=1.0, power_factors=(0.5, 0.5), filter_size=5), 0.7)
    assert calls["ms_ssim"][0] == 1.0
    assert calls["ms_ssim"][1]["power_factors"] == (0.5, 0.5)
    assert calls["ms_ssim"][1]["filter_size"] == 5
    close(losses.get_reconstruction_loss("ssim")(x, x), 0.4)


def _image_pair(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, shape).astype(np.float32)
    b = np.clip(a + 0.3 * rng.normal(size=shape), -1, 1).astype(np.float32)  # correlated
    return a, b


def test_ssim_loss_matches_tensorflow():
    pytest.importorskip("ganjax.metrics.ssim")
    tf = pytest.importorskip("tensorflow")
    a, b = _image_pair((3, 32, 32, 3), 6)
    expected = 1.0 - float(np.mean(tf.image.ssim(a, b, max_val=2.0).numpy()))
    close(J.ssim_loss(a, b), expected, rtol=0, atol=1e-4)  # tolerance 1e-4 (the brief)


def test_ms_ssim_loss_matches_tensorflow():
    pytest.importorskip("ganjax.metrics.ssim")
    tf = pytest.importorskip("tensorflow")
    a, b = _image_pair((2, 64, 64, 1), 7)
    pf = (0.0448, 0.2856, 0.3001)  # 3 scales: 64 -> 16 px, still >= the 11-px window
    expected = 1.0 - float(np.mean(
        tf.image.ssim_multiscale(a, b, max_val=2.0, power_factors=pf).numpy()))
    close(J.ms_ssim_loss(a, b, power_factors=pf), expected, rtol=0, atol=1e-4)  # 1e-4 (the brief)
