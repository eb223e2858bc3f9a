"""`optim.make_optimizer`'s global-norm gradient clip against Adam on gradients clipped by hand
(numpy), its reach (every algorithm's optimizers, BEGAN's chain included, inherit it) and a
resume that switches it on."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import gans, optim, train
from ganjax.config import base_config
from ganjax.data.core import DataInfo
from tests.helpers import assert_trees_equal, numpy_global_norm, tiny_algorithm_config, tiny_config

DIGITS = DataInfo("mnist_offline", (28, 28, 1), 10, tuple("0123456789"), 4500)


def _updates(tx, grads_sequence, params, **extra):
    """The updates `tx` emits for each gradient tree of `grads_sequence`, in order."""
    state, out, update = tx.init(params), [], jax.jit(lambda g, s: tx.update(g, s, params, **extra))
    for grads in grads_sequence:
        updates, state = update(grads, state)
        out.append(updates)
    return out


def _hand_clipped(grads, c):
    """g * min(1, c / ||g||_2), the norm over every leaf (numpy, float64)."""
    norm = numpy_global_norm(grads)
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x, np.float64) * min(1.0, c / norm), jnp.float32), grads)


def test_grad_clip_norm_is_adam_on_the_hand_clipped_gradients():
    """2,000 quiet steps (per-element scale 1, norm ~4), one outlier 100x as large, one quiet step:
    the clipped optimizer's updates are Adam's on the hand-clipped gradients, and the clip at
    twice the quiet norm keeps the outlier's step within a few lr where plain Adam moves weights
    by up to ~(1 - b1) / sqrt(1 - b2) ~ 16 x lr."""
    lr, c = 1e-3, 8.0
    config = base_config("dcgan")
    params = {"w": jnp.zeros((3, 4)), "b": jnp.zeros((4,))}
    rng = np.random.default_rng(0)
    scales = [1.0] * 2000 + [100.0, 1.0]
    grads = [jax.tree.map(lambda p, s=s: jnp.asarray(s * rng.normal(size=p.shape), jnp.float32), params) for s in scales]
    config.optim.grad_clip_norm = c
    clipped = _updates(optim.make_optimizer(config.optim, lr, 10), grads, params)
    config.optim.grad_clip_norm = 0.0
    plain = optim.make_optimizer(config.optim, lr, 10)
    reference = _updates(plain, [_hand_clipped(g, c) for g in grads], params)
    for got, want in zip(clipped, reference):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-9)  # float32 round-off over 2,002 steps
    biggest = lambda u: max(float(jnp.abs(x).max()) for x in jax.tree.leaves(u))
    outlier_plain, outlier_clipped = biggest(_updates(plain, grads, params)[2000]), biggest(clipped[2000])
    assert outlier_plain > 10 * lr, outlier_plain
    assert outlier_clipped < 3 * lr and outlier_clipped < outlier_plain / 4, (outlier_clipped, outlier_plain)


def test_a_gradient_inside_the_norm_is_untouched():
    config = base_config("dcgan")
    params = {"w": jnp.zeros((5,))}
    grads = [{"w": jnp.asarray([0.1, -0.2, 0.3, 0.0, 0.05], jnp.float32)}] * 3
    config.optim.grad_clip_norm = 10.0
    clipped = _updates(optim.make_optimizer(config.optim, 2e-4, 10), grads, params)
    config.optim.grad_clip_norm = 0.0
    plain = _updates(optim.make_optimizer(config.optim, 2e-4, 10), grads, params)
    for a, b in zip(clipped, plain):
        np.testing.assert_allclose(a["w"], b["w"], rtol=1e-6)  # scaled by exactly 1; XLA may fuse it differently


@pytest.mark.parametrize("name", ["dcgan", "began", "infobegan"])
def test_every_algorithms_optimizers_inherit_the_clip(name):
    """G's and D's optimizers, BEGAN's (Adam then the lr multipliers, fed M_global) included:
    with the clip on, a huge gradient gives the updates the unclipped optimizer gives on the
    gradient scaled to norm c."""
    c = 0.5
    make = lambda clip: gans.create(tiny_algorithm_config(name, **{"optim.grad_clip_norm": clip}), DIGITS)
    clipped, plain = make(c), make(0.0)
    state = clipped.init_state(jax.random.PRNGKey(0))
    extra = {"value": jnp.asarray(1.0)} if name != "dcgan" else {}
    for net, tx_clip, tx_plain in zip(
        (state.generator, state.discriminator), clipped.make_optimizers(), plain.make_optimizers()
    ):
        grads = jax.tree.map(lambda p: 1e3 * jnp.ones_like(p), net.params)
        got = _updates(tx_clip, [grads], net.params, **extra)[0]
        want = _updates(tx_plain, [_hand_clipped(grads, c)], net.params, **extra)[0]
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


def test_the_clip_keeps_the_optimizer_state_so_a_run_resumes_with_it(tmp_path):
    """The optimizer state has one structure with and without the clip, so a run stopped at
    step 2 resumes with `optim.grad_clip_norm` switched on (a resumable key, like the learning
    rates). A clip that never binds (1e6) continues as no clip (to round-off); one that always binds
    (1e-3, far below a DCGAN's gradient norms) moves every network less over steps 3-4."""
    params = {"w": jnp.zeros((3,))}
    config = base_config("dcgan")
    plain = jax.tree.structure(optim.make_optimizer(config.optim, 1e-3, 10).init(params))
    config.optim.grad_clip_norm = 1.0
    assert jax.tree.structure(optim.make_optimizer(config.optim, 1e-3, 10).init(params)) == plain

    config = tiny_config("dcgan_mnist", 2)
    start = jax.device_get(train.train_and_evaluate(config, str(tmp_path / "clip0")))
    for clip in ("clip1e6", "clip1e-3"):
        shutil.copytree(tmp_path / "clip0", tmp_path / clip)
    config.train.num_steps = 4
    ends = {}
    for name, clip in (("clip0", 0.0), ("clip1e6", 1e6), ("clip1e-3", 1e-3)):
        config.optim.grad_clip_norm = clip
        ends[name] = jax.device_get(train.train_and_evaluate(config, str(tmp_path / name)))
        assert int(ends[name].step) == 4
    arrays = lambda end: {k: (n.params, n.opt_state, n.batch_stats) for k, n in end.networks().items()}
    # Equal up to float32 round-off: the compiled step with the (untaken) clip fuses otherwise.
    assert_trees_equal(arrays(ends["clip1e6"]), arrays(ends["clip0"]), atol=1e-7)
    moved = lambda end, net: float(optax.tree.norm(jax.tree.map(
        lambda a, b: a - b, end.networks()[net].params, start.networks()[net].params)))
    for net in ("generator", "discriminator"):
        assert moved(ends["clip1e-3"], net) < 0.9 * moved(ends["clip0"], net), net
