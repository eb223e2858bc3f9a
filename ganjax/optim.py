"""Optimizers and learning-rate schedules from the config (optax)."""

from __future__ import annotations

import optax

from ganjax import losses


def learning_rate_schedule(lr: float, optim_config, num_steps: int) -> optax.Schedule | float:
    """`constant`; `linear_decay`: constant for `decay_start` x num_steps steps, then linear
    to 0 at num_steps (the CycleGAN schedule); `cosine`: lr x (1 + cos(pi t / num_steps)) / 2."""
    name = optim_config.schedule
    if name == "constant":
        return lr
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, max(num_steps, 1))
    if name == "linear_decay":
        start = int(optim_config.decay_start * num_steps)
        return optax.join_schedules(
            [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, max(num_steps - start, 1))],
            [start],
        )
    raise ValueError(f"Unknown config.optim.schedule {name!r}; use 'constant', 'linear_decay' or 'cosine'.")


def make_optimizer(
    optim_config, lr: float, num_steps: int, weight_clip: float = 0.0
) -> optax.GradientTransformation:
    """Adam(b1, b2) or RMSprop with the configured schedule; optional WGAN weight clipping.

    With `optim_config.grad_clip_norm` = c > 0 the gradients g are first rescaled to
    g * min(1, c / ||g||_2) (`optax.clip_by_global_norm`, the norm over the whole tree this
    optimizer updates). Adam's first step after a quiet stretch can move a weight by up to
    (1 - b1) / sqrt(1 - b2) x lr (~16 x lr at b1 0.5, b2 0.999) on one outlier gradient; the clip
    bounds the outlier itself."""
    schedule = learning_rate_schedule(lr, optim_config, num_steps)
    name = optim_config.optimizer
    if name == "adam":
        tx = optax.adam(schedule, b1=optim_config.b1, b2=optim_config.b2)
    elif name == "rmsprop":
        tx = optax.rmsprop(schedule)
    else:
        raise ValueError(f"Unknown config.optim.optimizer {name!r}; use 'adam' or 'rmsprop'.")
    if optim_config.grad_clip_norm:
        tx = clip_gradients_first(tx, optim_config.grad_clip_norm)
    if weight_clip:
        tx = optax.chain(tx, losses.weight_clipping(weight_clip))
    return tx


def clip_gradients_first(tx: optax.GradientTransformation, max_norm: float) -> optax.GradientTransformation:
    """`tx` on gradients rescaled by `optax.clip_by_global_norm(max_norm)`, with `tx`'s own
    state: unlike `optax.chain(clip, tx)` (whose state gains the clip's slot) the optimizer state
    has the same structure with and without the clip, so a run may resume with the clip switched
    on or off (the remedy for a run that diverged, as a lower learning rate is)."""
    clip = optax.clip_by_global_norm(max_norm)

    def update(grads, state, params=None):
        grads, _ = clip.update(grads, clip.init(grads))  # stateless: its state is empty
        return tx.update(grads, state, params)

    return optax.GradientTransformation(tx.init, update)


def make_optimizers(config, d_updates_per_step: int = 1) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """(G's, D's) optimizers from `config.optim`: learning rates `g_lr` / `d_lr`, schedules over
    `train.num_steps` G updates and `num_steps * d_updates_per_step` D updates, and WGAN weight
    clipping (`gan.weight_clip`) on D."""
    num_steps = config.train.num_steps
    g_tx = make_optimizer(config.optim, config.optim.g_lr, num_steps)
    d_tx = make_optimizer(
        config.optim, config.optim.d_lr, num_steps * d_updates_per_step, config.gan.weight_clip
    )
    return g_tx, d_tx
