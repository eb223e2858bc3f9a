"""Pure loss functions: arrays in, a scalar (or per-example array) out.

No Flax, no state, no model calls: arrays in, a scalar (or per-example values) out. A GAN algorithm in `ganjax/gans/`
composes them. "Logits" below means the raw, unbounded output of a discriminator or critic;
every function reduces with a mean over all elements unless it says otherwise.

Adversarial losses, after TF-GAN's `tfgan.losses`:

| name            | D / critic loss                                 | G loss                    | paper                    |
|-----------------|-------------------------------------------------|---------------------------|--------------------------|
| minimax         | BCE(D(x), t_real) + BCE(D(G(z)), 0)             | E[log(1 - sigma(D(G(z))))] | Goodfellow et al. 2014   |
| non_saturating  | as minimax                                      | -E[log sigma(D(G(z)))]    | Goodfellow et al. 2014   |
| least_squares   | 1/2 E[(D(x)-b)^2] + 1/2 E[(D(G(z))-a)^2]        | 1/2 E[(D(G(z))-c)^2]      | Mao et al. 2017 (LSGAN)  |
| wasserstein     | E[D(G(z))] - E[D(x)]                            | -E[D(G(z))]               | Arjovsky et al. 2017     |
| hinge           | E[relu(1-D(x))] + E[relu(1+D(G(z)))]            | -E[D(G(z))]               | Lim & Ye 2017; Miyato 2018 |

Then, in this order: Lipschitz constraints (WGAN-GP penalty, weight clipping); auxiliary
classification (ACGAN); InfoGAN's mutual-information terms; BEGAN; CycleGAN (cycle, identity and
report 001's weighted cycle loss); reconstruction losses for the predictor and latent recovery
(MSE, L1, 1 - SSIM, 1 - MS-SSIM, feature distance) with a registry by name. `docs/losses.md`
tabulates every formula with its paper.
"""

from __future__ import annotations

import functools
import importlib
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

Array = jax.Array


# --------------------------------------------------------------------------------------------
# Adversarial losses.
# --------------------------------------------------------------------------------------------


def binary_cross_entropy_with_logits(logits: Array, targets: Array | float) -> Array:
    """Element-wise BCE(sigma(l), t) = -[t log sigma(l) + (1 - t) log(1 - sigma(l))].

    Computed stably as softplus(l) - t * l. Returns an array of the shape of `logits`.
    """
    targets = jnp.broadcast_to(jnp.asarray(targets, logits.dtype), logits.shape)
    return optax.sigmoid_binary_cross_entropy(logits, targets)


def minimax_discriminator_loss(
    real_logits: Array, fake_logits: Array, real_target: float = 1.0
) -> Array:
    """D loss of the original GAN: E[BCE(D(x), t_real)] + E[BCE(D(G(z)), 0)].

    `real_target` < 1 is one-sided label smoothing (Salimans et al. 2016): real targets become
    t_real (e.g. 0.9), fake targets stay 0. Also the D loss of the non-saturating GAN.
    """
    return (
        binary_cross_entropy_with_logits(real_logits, real_target).mean()
        + binary_cross_entropy_with_logits(fake_logits, 0.0).mean()
    )


def minimax_generator_loss(fake_logits: Array) -> Array:
    """Saturating G loss of the original minimax game: E[log(1 - sigma(D(G(z))))] = -E[softplus(l)]."""
    return -jax.nn.softplus(fake_logits).mean()


def non_saturating_generator_loss(fake_logits: Array) -> Array:
    """Non-saturating G loss: -E[log sigma(D(G(z)))] = E[softplus(-l)] (Goodfellow et al. 2014)."""
    return jax.nn.softplus(-fake_logits).mean()


def least_squares_discriminator_loss(
    real_logits: Array, fake_logits: Array, a: float = 0.0, b: float = 1.0
) -> Array:
    """LSGAN D loss: 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] (Mao et al. 2017).

    `b` is the real target (0.9 gives the soft real labels of report 001), `a` the fake target.
    """
    return 0.5 * jnp.mean((real_logits - b) ** 2) + 0.5 * jnp.mean((fake_logits - a) ** 2)


def least_squares_generator_loss(fake_logits: Array, c: float = 1.0) -> Array:
    """LSGAN G loss: 1/2 E[(D(G(z)) - c)^2], c the value G wants D to believe for fakes."""
    return 0.5 * jnp.mean((fake_logits - c) ** 2)


def wasserstein_critic_loss(real_scores: Array, fake_scores: Array) -> Array:
    """WGAN critic loss: E[f(G(z))] - E[f(x)] (Arjovsky et al. 2017); f is 1-Lipschitz by
    weight clipping (`weight_clipping`) or a gradient penalty (`gradient_penalty`)."""
    return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_generator_loss(fake_scores: Array) -> Array:
    """WGAN generator loss: -E[f(G(z))]."""
    return -jnp.mean(fake_scores)


def hinge_discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
    """Hinge D loss: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017, Miyato et al. 2018)."""
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits: Array) -> Array:
    """Hinge G loss: -E[D(G(z))]."""
    return -jnp.mean(fake_logits)


class AdversarialLoss(NamedTuple):
    """A (discriminator, generator) loss pair selected by name."""

    discriminator: Callable[..., Array]
    generator: Callable[[Array], Array]
    # Whether the discriminator loss accepts a soft real target (label smoothing).
    accepts_real_target: bool


ADVERSARIAL_LOSSES: dict[str, AdversarialLoss] = {
    "minimax": AdversarialLoss(minimax_discriminator_loss, minimax_generator_loss, True),
    "non_saturating": AdversarialLoss(
        minimax_discriminator_loss, non_saturating_generator_loss, True
    ),
    "least_squares": AdversarialLoss(
        lambda real, fake, real_target=1.0: least_squares_discriminator_loss(
            real, fake, a=0.0, b=real_target
        ),
        least_squares_generator_loss,
        True,
    ),
    "wasserstein": AdversarialLoss(wasserstein_critic_loss, wasserstein_generator_loss, False),
    "hinge": AdversarialLoss(hinge_discriminator_loss, hinge_generator_loss, False),
}


def get_adversarial_loss(name: str) -> AdversarialLoss:
    """Returns the named loss pair; the error lists the valid names."""
    try:
        return ADVERSARIAL_LOSSES[name]
    except KeyError:
        raise ValueError(
            f"Unknown adversarial loss {name!r}; choose one of {sorted(ADVERSARIAL_LOSSES)}."
        ) from None


# --------------------------------------------------------------------------------------------
# Lipschitz constraints for critics.
# --------------------------------------------------------------------------------------------


def gradient_penalty(
    critic_fn: Callable[[Array], Array],
    real: Array,
    fake: Array,
    key: Array,
    target_norm: float = 1.0,
) -> Array:
    """WGAN-GP penalty E[(||grad_x f(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017).

    x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per example. The norm is taken over the
    whole flattened example (all pixels and channels), not per channel. `critic_fn` maps a
    batch [N, ...] to scores [N] or [N, 1]; since examples are independent, the gradient of the
    summed scores gives every example's own input gradient (this needs a critic without batch
    normalisation over the batch, as the paper prescribes). The loss term is lambda * GP,
    lambda = 10 in the paper; the caller applies lambda.
    """
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = jax.random.uniform(key, eps_shape, dtype=real.dtype)
    x_hat = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x_hat)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1) + 1e-12)
    return jnp.mean((norms - target_norm) ** 2)


def weight_clipping(clip_value: float) -> optax.GradientTransformation:
    """An optax transform that keeps every parameter in [-c, c] after the update (WGAN, c=0.01).

    Chain it last: `optax.chain(optax.rmsprop(5e-5), weight_clipping(0.01))`. It rewrites the
    update u into clip(p + u, -c, c) - p, so that `optax.apply_updates` lands on the clipped
    parameters.
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("weight_clipping needs the parameters: call tx.update(g, s, params).")
        updates = jax.tree.map(
            lambda p, u: jnp.clip(p + u, -clip_value, clip_value) - p, params, updates
        )
        return updates, state

    return optax.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------------------------
# Shared reductions (private helpers).
# --------------------------------------------------------------------------------------------


def _weighted_mean(values: Array, weights: Array | None) -> Array:
    """sum(w * v) / sum(w); the plain mean when `weights` is None; 0 when every weight is 0."""
    if weights is None:
        return jnp.mean(values)
    weights = jnp.broadcast_to(jnp.asarray(weights, values.dtype), values.shape)
    total = jnp.sum(weights)
    safe_total = jnp.where(total > 0, total, 1.0)
    return jnp.where(total > 0, jnp.sum(weights * values) / safe_total, 0.0)


def _per_example_mean(values: Array) -> Array:
    """Mean over every axis but the first (batch) axis: [N, ...] -> [N]."""
    return jnp.mean(values.reshape(values.shape[0], -1), axis=-1)


def _per_example_feature_distance(
    features_x: Any, features_y: Any, power: float, layer_weights: Sequence[float] | None
) -> Array:
    """sum_l w_l * mean_{elements of layer l} |f_l(x) - f_l(y)|^power, per example -> [N].

    `features_x` / `features_y` are one array [N, ...] or a list of them (one per layer).
    """
    if not isinstance(features_x, (list, tuple)):
        features_x, features_y = [features_x], [features_y]
    if len(features_x) != len(features_y):
        raise ValueError(
            f"Feature lists differ in length: {len(features_x)} vs {len(features_y)}."
        )
    if layer_weights is None:
        layer_weights = [1.0] * len(features_x)
    if len(layer_weights) != len(features_x):
        raise ValueError(
            f"{len(layer_weights)} layer weights for {len(features_x)} feature layers."
        )
    return sum(
        w * _per_example_mean(jnp.abs(fx - fy) ** power)
        for w, fx, fy in zip(layer_weights, features_x, features_y)
    )


# --------------------------------------------------------------------------------------------
# Auxiliary classification (ACGAN) and categorical codes (InfoGAN).
# --------------------------------------------------------------------------------------------


def categorical_cross_entropy(
    logits: Array,
    labels: Array,
    class_weights: Array | None = None,
    mask: Array | None = None,
) -> Array:
    """Softmax cross-entropy for one integer label per example, averaged over the batch.

        CE_i = -log softmax(l_i)[y_i] = logsumexp(l_i) - l_i[y_i]
        loss = sum_i w_i CE_i / sum_i w_i,   w_i = class_weights[y_i] * mask_i  (1 if absent)

    The auxiliary classifier loss of ACGAN (Odena et al. 2017; report 002 with one label per
    example, e.g. the 7 FER2013 emotions) and the categorical-code term of InfoGAN (Chen et al.
    2016). `logits` [N, K], `labels` int [N]. `class_weights` [K] re-weights rare classes and,
    as in PyTorch's `CrossEntropyLoss(weight=...)`, normalises by the sum of the weights used;
    `mask` [N] (0/1) drops examples without a label. Returns 0 when every weight is 0.
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    weights = None
    if class_weights is not None:
        weights = jnp.asarray(class_weights, ce.dtype)[labels]
    if mask is not None:
        mask = jnp.asarray(mask, ce.dtype)
        weights = mask if weights is None else weights * mask
    return _weighted_mean(ce, weights)


def multilabel_cross_entropy(
    logits: Array,
    labels: Array,
    attribute_weights: Array | None = None,
    mask: Array | None = None,
) -> Array:
    """Sigmoid BCE for K independent binary attributes, averaged over examples and attributes.

        BCE_ik = -[y_ik log sigma(l_ik) + (1 - y_ik) log(1 - sigma(l_ik))]
        loss = sum_ik w_ik BCE_ik / sum_ik w_ik,   w_ik = attribute_weights[k] * mask_ik

    The auxiliary classifier loss of ACGAN with multi-label targets: CelebA's 40 binary
    attributes (report 002; Odena et al. 2017). `logits` [N, K]; `labels` [N, K] in {0, 1}
    (bool is fine; soft targets in [0, 1] also work). `attribute_weights` [K] and `mask`
    ([N, K] or [K], 0/1, e.g. to condition on a subset of the attributes) are optional; without
    them this is the mean over all N*K entries (PyTorch `BCEWithLogitsLoss()`).
    """
    bce = binary_cross_entropy_with_logits(logits, jnp.asarray(labels, logits.dtype))
    weights = None
    if attribute_weights is not None:
        weights = jnp.broadcast_to(jnp.asarray(attribute_weights, bce.dtype), bce.shape)
    if mask is not None:
        mask = jnp.broadcast_to(jnp.asarray(mask, bce.dtype), bce.shape)
        weights = mask if weights is None else weights * mask
    return _weighted_mean(bce, weights)


# --------------------------------------------------------------------------------------------
# InfoGAN mutual-information terms (Chen et al. 2016; report 000).
# --------------------------------------------------------------------------------------------

# Plain Python: no JAX op may run at import time (jax.distributed.initialize must come first).
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_nll(mean: Array, log_std: Array | float, codes: Array) -> Array:
    """Negative log-likelihood of continuous codes under Q(c|x) = N(mean, exp(log_std)^2).

        -log Q(c|x) = sum_d [ (c_d - mu_d)^2 / (2 sigma_d^2) + log sigma_d + 0.5 log(2 pi) ]

    summed over the code dimensions d and averaged over the batch (the log-likelihood of the
    whole code vector, as openai/InfoGAN's `logli`). Minimising it maximises InfoGAN's
    lower bound on I(c; G(z, c)) (Chen et al. 2016). `mean` and `codes` are [N, D]; `log_std`
    broadcasts to them (predicted [N, D], or a scalar). Common slips this avoids: the wrong sign
    (returning +log-likelihood), dividing by sigma instead of sigma^2, or adding log(sigma^2)
    where sigma is meant (or dropping the log sigma term while learning sigma).
    """
    std = jnp.exp(log_std)
    nll = 0.5 * ((codes - mean) / std) ** 2 + log_std + _HALF_LOG_2PI
    nll = jnp.broadcast_to(nll, jnp.broadcast_shapes(jnp.shape(mean), jnp.shape(codes)))
    return jnp.mean(jnp.sum(nll.reshape(nll.shape[0], -1), axis=-1))


def fixed_std_gaussian_loss(mean: Array, codes: Array, std: float = 1.0) -> Array:
    """The L2 form of the continuous-code term when the variance is fixed (openai/InfoGAN).

        loss = E_i[ sum_d (c_id - mu_id)^2 / (2 std^2) ]

    This is `gaussian_nll(mean, log(std), codes)` without its constant D (log std + 0.5 log 2pi),
    so it has the same gradients (Chen et al. 2016; openai/InfoGAN's fixed-std continuous codes,
    std = 1). `mean`, `codes` [N, D].
    """
    sq = 0.5 * ((codes - mean) / std) ** 2
    return jnp.mean(jnp.sum(sq.reshape(sq.shape[0], -1), axis=-1))


def noise_recovery_loss(predicted_noise: Array, noise: Array) -> Array:
    """Report 000's noise-recovery term: the same L2 as the continuous codes, on z.

        loss = E_i[ 0.5 ||z_i - z_hat_i||^2 ]  (= `fixed_std_gaussian_loss(z_hat, z)`)

    Report 000 adds it to the info loss with weight 0.1 (`infogan_info_loss(lambda_noise=0.1)`).
    """
    return fixed_std_gaussian_loss(predicted_noise, noise, std=1.0)


def infogan_info_loss(
    categorical_logits: Array | Sequence[Array] = (),
    categorical_codes: Array | Sequence[Array] = (),
    continuous_mean: Array | None = None,
    continuous_codes: Array | None = None,
    continuous_log_std: Array | float | None = None,
    predicted_noise: Array | None = None,
    noise: Array | None = None,
    lambda_categorical: float = 1.0,
    lambda_continuous: float = 1.0,
    lambda_noise: float = 0.1,
) -> Array:
    """InfoGAN's information loss (to minimise by G and by the Q head), report 000's form:

        L_info = lambda_cat  * sum_j CE(Q_j(x), c_j)                 (categorical codes)
               + lambda_cont * [-log Q(c_cont | x)]                  (continuous codes)
               + lambda_noise * 0.5 ||z - z_hat||^2                  (noise recovery)

    averaged over the batch. L_info = H(c) - L_I(G, Q) up to constants, so minimising it
    maximises the variational lower bound L_I on I(c; G(z, c)) (Chen et al. 2016, Eq. 5); the
    GAN adds lambda * L_info (lambda ~ 1) to G's loss. The continuous term is `gaussian_nll`
    when `continuous_log_std` is given and the fixed-variance L2 `fixed_std_gaussian_loss`
    (openai/InfoGAN) when it is None. Any term whose inputs are left out is skipped.

    `categorical_logits` is one [N, K] array (with int `categorical_codes` [N]) or a sequence of
    them, one per categorical code (with a sequence of [N] codes or an int array [N, n_codes]).
    """
    if not isinstance(categorical_logits, (list, tuple)):
        categorical_logits = [categorical_logits]
        categorical_codes = [categorical_codes]
    elif not isinstance(categorical_codes, (list, tuple)):
        categorical_codes = [categorical_codes[:, j] for j in range(categorical_codes.shape[1])]
    if len(categorical_logits) != len(categorical_codes):
        raise ValueError(
            f"{len(categorical_logits)} categorical heads but {len(categorical_codes)} codes."
        )
    total = jnp.zeros((), jnp.float32)
    for logits, codes in zip(categorical_logits, categorical_codes):
        total = total + lambda_categorical * categorical_cross_entropy(logits, codes)
    if continuous_mean is not None:
        if continuous_log_std is None:
            cont = fixed_std_gaussian_loss(continuous_mean, continuous_codes)
        else:
            cont = gaussian_nll(continuous_mean, continuous_log_std, continuous_codes)
        total = total + lambda_continuous * cont
    if predicted_noise is not None:
        total = total + lambda_noise * noise_recovery_loss(predicted_noise, noise)
    return total


# --------------------------------------------------------------------------------------------
# BEGAN (Berthelot et al. 2017; report 000).
# --------------------------------------------------------------------------------------------


def began_autoencoder_loss(images: Array, reconstructions: Array, eta: float = 1.0) -> Array:
    """Per-example autoencoder loss L(v) = mean_pixels |v - D(v)|^eta -> [N].

    BEGAN's discriminator is an autoencoder D; eta = 1 (L1) is the paper's choice and the
    default (Berthelot et al. 2017, Eq. 1; carpedm20/BEGAN-tensorflow uses the pixel mean).
    """
    return _per_example_mean(jnp.abs(images - reconstructions) ** eta)


def began_discriminator_loss(real_loss: Array, fake_loss: Array, k_t: Array | float) -> Array:
    """BEGAN D loss: L_D = L(x) - k_t L(G(z)), with L(.) averaged over the batch.

    `real_loss`, `fake_loss` are `began_autoencoder_loss` outputs ([N] or scalars); k_t is the
    state's balance term, a constant here (stop_gradient) (Berthelot et al. 2017, Eq. 4).
    """
    return jnp.mean(real_loss) - jax.lax.stop_gradient(k_t) * jnp.mean(fake_loss)


def began_generator_loss(fake_loss: Array) -> Array:
    """BEGAN G loss: L_G = L(G(z)), averaged over the batch (Berthelot et al. 2017, Eq. 4)."""
    return jnp.mean(fake_loss)


def began_k_update(
    k_t: Array | float,
    real_loss: Array,
    fake_loss: Array,
    gamma: float = 0.5,
    lambda_k: float = 0.001,
) -> Array:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) (Berthelot et al. 2017).

    gamma = E[L(G(z))] / E[L(x)] is the diversity ratio (0.5 to 0.75 in the paper), lambda_k
    the proportional gain (0.001), k_0 = 0. No gradient flows through the update.
    """
    real, fake = jnp.mean(real_loss), jnp.mean(fake_loss)
    k_next = k_t + lambda_k * (gamma * real - fake)
    return jax.lax.stop_gradient(jnp.clip(k_next, 0.0, 1.0))


def began_convergence(real_loss: Array, fake_loss: Array, gamma: float = 0.5) -> Array:
    """BEGAN's convergence measure M_global = L(x) + |gamma L(x) - L(G(z))| (Berthelot et al. 2017)."""
    real, fake = jnp.mean(real_loss), jnp.mean(fake_loss)
    return real + jnp.abs(gamma * real - fake)


def pull_away_term(embeddings: Array) -> Array:
    """EBGAN's repelling regulariser f_PT = 1 / (N (N - 1)) sum_{i != j} cos(s_i, s_j)^2.

    `embeddings` [N, h] are the autoencoder-discriminator's codes of one batch of generated
    images; the term is 0 for mutually orthogonal codes and 1 for a batch of one repeated code
    (EBGAN: Zhao, Mathieu & LeCun 2017 in docs/references.md, Eq. 6, added to the generator's
    loss against mode collapse). A zero code counts as orthogonal to every other (its cosines
    are 0, its gradient finite). Needs N >= 2.
    """
    n = embeddings.shape[0]
    if n < 2:
        raise ValueError(f"the pull-away term needs a batch of at least 2 embeddings, got {n}.")
    unit = embeddings / optax.safe_norm(embeddings, 1e-12, axis=-1, keepdims=True)
    return _off_diagonal_mean(jnp.square(unit @ unit.T))


def _off_diagonal_mean(matrix: Array) -> Array:
    """1 / (n (n - 1)) sum_{i != j} M_ij of a square [n, n] matrix (n >= 2)."""
    n = matrix.shape[0]
    return (jnp.sum(matrix) - jnp.trace(matrix)) / (n * (n - 1))


def gaussian_mmd2(x: Array, y: Array, bandwidth_factors: Sequence[float] = (0.5, 1.0, 2.0)) -> Array:
    """The unbiased squared maximum mean discrepancy between samples x [n, h] and y [m, h]
    (Gretton et al. 2012, Eq. 3; GMMN and MMD-GAN, Li et al. 2015 / 2017, match a generator's
    codes to the data's with it):

        MMD_u^2 = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
                  - 2/(nm) sum_{i, j} k(x_i, y_j),

    k the mean over the factors f of Gaussian kernels exp(-|a - b|^2 / (2 (f s)^2)), s the median
    distance between two different points of the pooled samples (the median heuristic, no
    gradient through it), so the term does not depend on the codes' scale. 0 in expectation when
    x and y come from one distribution; it can be slightly negative on a finite sample. Needs
    n, m >= 2.
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"the MMD needs at least 2 samples on each side, got {n} and {m}.")
    pooled = jnp.concatenate([x, y]).astype(jnp.float32)
    squared = jnp.sum(jnp.square(pooled[:, None, :] - pooled[None, :, :]), axis=-1)
    upper = squared[jnp.triu_indices(n + m, k=1)]
    scale2 = jax.lax.stop_gradient(jnp.maximum(jnp.median(upper), 1e-12))
    kernel = sum(jnp.exp(-squared / (2.0 * f * f * scale2)) for f in bandwidth_factors) / len(bandwidth_factors)
    return _off_diagonal_mean(kernel[:n, :n]) + _off_diagonal_mean(kernel[n:, n:]) - 2.0 * jnp.mean(kernel[:n, n:])


# --------------------------------------------------------------------------------------------
# CycleGAN (Zhu et al. 2017; report 001).
# --------------------------------------------------------------------------------------------


def l1_loss(predictions: Array, targets: Array) -> Array:
    """Mean absolute error E|y_hat - y| over all elements."""
    return jnp.mean(jnp.abs(predictions - targets))


def cycle_consistency_loss(reconstructed: Array, original: Array) -> Array:
    """One direction of CycleGAN's cycle loss: E_a |F(G(a)) - a|_1, the mean over elements.

    Zhu et al. 2017, Eq. 2 (and report 001); the full loss sums both directions
    (a -> b -> a and b -> a -> b) and is weighted by lambda_cycle (10) by the caller.
    """
    return l1_loss(reconstructed, original)


def identity_loss(mapped: Array, original: Array) -> Array:
    """CycleGAN identity loss E_b |G(b) - b|_1 (mean over elements): G should leave an image
    of its target domain unchanged (Zhu et al. 2017, Sec. 5.2; Taigman et al. 2017). The
    reference weight is 0.5 * lambda_cycle, applied by the caller."""
    return l1_loss(mapped, original)


def weighted_cycle_loss(
    reconstructed: Array,
    original: Array,
    reconstructed_features: Array | Sequence[Array],
    original_features: Array | Sequence[Array],
    discriminator_output: Array,
    gamma: Array | float,
) -> Array:
    """Report 001's weighted cycle loss for domain A (use it the same way for B):

        L_cyc = E_a[ D_A(a) * ( gamma * |f_DA(F(G(a))) - f_DA(a)|_1
                               + (1 - gamma) * |F(G(a)) - a|_1 ) ]

    - `reconstructed` F(G(a)) and `original` a: [N, H, W, C].
    - `reconstructed_features` f_DA(F(G(a))) and `original_features` f_DA(a): the
      discriminator's last feature layer on each, [N, ...] (or a list of layers, summed).
      The caller computes them; this function never calls a model.
    - `discriminator_output` D_A(a): the discriminator's output on the real a, [N] or a
      PatchGAN map [N, h, w, 1] (averaged to one weight per example). It is a weight, not a
      path for gradients: it is wrapped in stop_gradient, so the loss never trains D_A.
      It is used as given: pass the value the discriminator reports (a probability for a
      sigmoid D, the raw score for an LSGAN D, whose real target is 1 or 0.9).
    - `gamma` in [0, 1], rising linearly over training: `weighted_cycle_gamma`.

    Interpretations: |.|_1 is the mean absolute difference over the elements of each example
    (as CycleGAN's `L1Loss`), not the sum, so the pixel term at gamma = 0 and D_A(a) = 1 is
    exactly `cycle_consistency_loss`; E_a is the batch mean. The weight lambda_cycle is applied
    by the caller, as in the report's full objective.
    """
    weight = jax.lax.stop_gradient(discriminator_output)
    weight = _per_example_mean(weight) if weight.ndim > 1 else weight
    feature_term = _per_example_feature_distance(
        reconstructed_features, original_features, power=1.0, layer_weights=None
    )
    pixel_term = _per_example_mean(jnp.abs(reconstructed - original))
    return jnp.mean(weight * (gamma * feature_term + (1.0 - gamma) * pixel_term))


def weighted_cycle_gamma(step: Array | int, ramp_steps: int) -> Array:
    """gamma(step) = clip(step / ramp_steps, 0, 1): report 001's linear 0 -> 1 ramp of the
    weighted cycle loss ("linearly increase with epochs, to 1"); ramp_steps <= 0 gives 1.

    `step` may be a traced array (jit-safe); pass epochs or steps consistently.
    """
    if ramp_steps <= 0:
        return jnp.ones((), jnp.float32)
    return jnp.clip(jnp.asarray(step, jnp.float32) / ramp_steps, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Reconstruction losses: predictor training and iterative latent recovery (report 000).
# --------------------------------------------------------------------------------------------


def mse_loss(predictions: Array, targets: Array) -> Array:
    """Mean squared error E[(y_hat - y)^2] over all elements (report 000's first predictor loss)."""
    return jnp.mean((predictions - targets) ** 2)


def _ssim_module():
    # Imported lazily: the metrics module is optional for everything else in this file.
    return importlib.import_module("ganjax.metrics.ssim")


def ssim_loss(
    predictions: Array,
    targets: Array,
    max_val: float = 2.0,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Array:
    """1 - SSIM, averaged over the batch (Wang et al. 2004; report 000, Eq. 4-5).

        SSIM(x, y) = mean_p [(2 mu_x mu_y + C1)(2 sigma_xy + C2)] /
                            [(mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)],
        C1 = (k1 max_val)^2, C2 = (k2 max_val)^2, Gaussian window (size, sigma).

    NHWC images; ganjax images lie in [-1, 1], so max_val = 2. The defaults match
    `tf.image.ssim`. Computed by `ganjax.metrics.ssim.ssim`.
    """
    ssim = _ssim_module().ssim(
        predictions, targets, max_val,
        filter_size=filter_size, filter_sigma=filter_sigma, k1=k1, k2=k2,
    )
    return 1.0 - jnp.mean(ssim)


def ms_ssim_loss(
    predictions: Array,
    targets: Array,
    max_val: float = 2.0,
    power_factors: Sequence[float] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Array:
    """1 - MS-SSIM, averaged over the batch (Wang et al. 2003; report 000, Eq. 6).

        MS-SSIM(x, y) = l_M(x, y)^{beta_M} * prod_{j=1..M} cs_j(x, y)^{beta_j}

    M = len(power_factors) scales, halving the resolution between scales. The defaults match
    `tf.image.ssim_multiscale` (5 scales need images of at least ~176 px with an 11-pixel
    window: pass fewer power factors or a smaller window for 28-64 px images). NHWC, images in
    [-1, 1] so max_val = 2. Computed by `ganjax.metrics.ssim.ms_ssim`.
    """
    ms_ssim = _ssim_module().ms_ssim(
        predictions, targets, max_val,
        power_factors=power_factors, filter_size=filter_size, filter_sigma=filter_sigma,
        k1=k1, k2=k2,
    )
    return 1.0 - jnp.mean(ms_ssim)


def feature_distance_loss(
    predictions: Array,
    targets: Array,
    feature_fn: Callable[[Array], Array | Sequence[Array]],
    power: float = 2.0,
    layer_weights: Sequence[float] | None = None,
) -> Array:
    """Feature (perceptual) distance E_i[ sum_l w_l mean |phi_l(y_hat_i) - phi_l(y_i)|^p ].

    `feature_fn` maps a batch to one feature array [N, ...] or a list of them (one per layer),
    e.g. the first 23 layers of VGG-16 (report 000, Sec. 7.3; Johnson et al. 2016's feature
    reconstruction loss). p = 2 is the mean squared distance, p = 1 the L1 distance; every
    layer is averaged over its own elements, then layers are summed with `layer_weights`
    (default 1). The caller supplies `feature_fn` (a closure over frozen weights); this
    function only applies it to both inputs.
    """
    distance = _per_example_feature_distance(
        feature_fn(predictions), feature_fn(targets), power=power, layer_weights=layer_weights
    )
    return jnp.mean(distance)


RECONSTRUCTION_LOSSES: dict[str, Callable[..., Array]] = {
    "mse": mse_loss,
    "l1": l1_loss,
    "ssim": ssim_loss,
    "ms_ssim": ms_ssim_loss,
    "feature": feature_distance_loss,
}


def get_reconstruction_loss(name: str, **kwargs) -> Callable[[Array, Array], Array]:
    """Returns `loss(predictions, targets) -> scalar` for a config's reconstruction loss name.

    `kwargs` are bound to the named function (e.g. `max_val`, `power_factors`, and for
    "feature" the required `feature_fn`). The error lists the valid names.
    """
    try:
        fn = RECONSTRUCTION_LOSSES[name]
    except KeyError:
        raise ValueError(
            f"Unknown reconstruction loss {name!r}; choose one of {sorted(RECONSTRUCTION_LOSSES)}."
        ) from None
    if name == "feature" and "feature_fn" not in kwargs:
        raise ValueError('The "feature" reconstruction loss needs feature_fn=... (e.g. VGG-16).')
    return functools.partial(fn, **kwargs)
