"""CycleGAN (report 001, docs/references.md): the weighted cycle loss by hand, the image pool, a tiny run on a
FER2013 CSV written here, the Wasserstein variant's step, and resume equality."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ganjax import gans, losses, train
from ganjax.data import fer2013
from ganjax.data.core import DataInfo
from ganjax.gans.cyclegan import image_pool_query
from tests.helpers import assert_trees_equal, load_config

# --------------------------------------------------------------------------------------------
# Weighted cycle loss.
# --------------------------------------------------------------------------------------------


def test_weighted_cycle_loss_matches_a_hand_computation():
    # Two examples of 1x2 pixels; features of 2 elements; PatchGAN maps of 2 patches.
    a = np.array([[[[0.0], [1.0]]], [[[-1.0], [0.5]]]], np.float32)  # [2, 1, 2, 1]
    rec = np.array([[[[0.5], [0.0]]], [[[-1.0], [1.5]]]], np.float32)
    f_a = np.array([[1.0, 2.0], [0.0, 0.0]], np.float32)
    f_rec = np.array([[2.0, 0.0], [1.0, -1.0]], np.float32)
    d_a = np.array([[[[0.8]], [[0.6]]], [[[0.2]], [[0.4]]]], np.float32)  # [2, 2, 1, 1]
    gamma = 0.25
    # By hand: pixel |.|_1 means: ex0 (0.5 + 1) / 2 = 0.75, ex1 (0 + 1) / 2 = 0.5;
    # feature means: ex0 (1 + 2) / 2 = 1.5, ex1 (1 + 1) / 2 = 1.0; weights D(a): 0.7, 0.3.
    ex0 = 0.7 * (0.25 * 1.5 + 0.75 * 0.75)
    ex1 = 0.3 * (0.25 * 1.0 + 0.75 * 0.5)
    expected = (ex0 + ex1) / 2
    got = losses.weighted_cycle_loss(rec, a, f_rec, f_a, d_a, gamma)
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)
    # gamma = 0 and D(a) = 1: the plain cycle loss; D(a) carries no gradient.
    ones = np.ones((2,), np.float32)
    np.testing.assert_allclose(
        float(losses.weighted_cycle_loss(rec, a, f_rec, f_a, ones, 0.0)),
        float(losses.cycle_consistency_loss(rec, a)), rtol=1e-6,
    )
    grad = jax.grad(lambda d: losses.weighted_cycle_loss(rec, a, f_rec, f_a, d, gamma))(jnp.asarray(d_a))
    assert float(jnp.abs(grad).sum()) == 0.0
    # gamma ramps linearly 0 -> 1 over the configured steps.
    np.testing.assert_allclose([float(losses.weighted_cycle_gamma(s, 8)) for s in (0, 2, 8, 20)],
                               [0.0, 0.25, 1.0, 1.0])


# --------------------------------------------------------------------------------------------
# Image pool.
# --------------------------------------------------------------------------------------------


def _images(values):
    return jnp.asarray(np.asarray(values, np.float32)[:, None, None, None] * np.ones((1, 2, 2, 1), np.float32))


def test_image_pool_fills_then_swaps_half_the_time():
    pool, count = jnp.zeros((3, 2, 2, 1)), jnp.zeros((), jnp.int32)
    query = jax.jit(image_pool_query)
    # Filling: every new image is stored and returned as it is.
    out, pool, count = query(pool, count, _images([1, 2]), jax.random.PRNGKey(0))
    np.testing.assert_array_equal(out[:, 0, 0, 0], [1, 2])
    assert int(count) == 2
    out, pool, count = query(pool, count, _images([3, 4]), jax.random.PRNGKey(1))
    assert int(count) == 3 and float(out[0, 0, 0, 0]) == 3.0
    stored = set(np.asarray(pool[:, 0, 0, 0]).tolist())
    # Image 4 met a full pool: returned as is (pool {1, 2, 3}) or swapped for a stored one.
    if float(out[1, 0, 0, 0]) == 4.0:
        assert stored == {1.0, 2.0, 3.0}
    else:
        assert float(out[1, 0, 0, 0]) in {1.0, 2.0, 3.0} and 4.0 in stored and len(stored) == 3
    # Full pool: about half of the returned images are stored ones, each replaced by the new one.
    swaps = 0
    for i in range(200):
        new = _images([100.0 + i])
        out, pool2, count2 = query(pool, count, new, jax.random.PRNGKey(100 + i))
        assert int(count2) == 3
        value = float(out[0, 0, 0, 0])
        if value != 100.0 + i:
            swaps += 1
            assert value in set(np.asarray(pool[:, 0, 0, 0]).tolist())
            assert 100.0 + i in set(np.asarray(pool2[:, 0, 0, 0]).tolist())
        else:
            np.testing.assert_array_equal(pool2, pool)
    assert 70 <= swaps <= 130, swaps
    # Deterministic in the key; a pool of size 0 passes the fakes through.
    a = query(pool, count, _images([7, 8, 9]), jax.random.PRNGKey(5))
    b = query(pool, count, _images([7, 8, 9]), jax.random.PRNGKey(5))
    assert_trees_equal(a, b)
    out, _, _ = image_pool_query(jnp.zeros((0, 2, 2, 1)), count, _images([5]), jax.random.PRNGKey(0))
    assert float(out[0, 0, 0, 0]) == 5.0


# --------------------------------------------------------------------------------------------
# Networks.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["fast", "native"])
def test_k3_resampling_layers_match_pytorch_semantics(impl):
    """The reference's Conv2d(3, 2, 1) and ConvTranspose2d(3, 2, 1, output_padding=1), both
    forms, against brute-force numpy loops (tests/test_layers.py); float32 vs float64, 1e-4."""
    from ganjax.models.cyclegan import DownConv3, UpConv3
    from tests.test_layers import numpy_conv, numpy_conv_transpose

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 8, 3))
    for layer, reference, out_shape in (
        (DownConv3(5, impl=impl, use_bias=False), numpy_conv, (2, 3, 4, 5)),
        (UpConv3(5, impl=impl, use_bias=False), numpy_conv_transpose, (2, 12, 16, 5)),
    ):
        variables = layer.init(jax.random.PRNGKey(1), x)
        w = variables["params"]["kernel"]
        assert w.shape == (3, 3, 3, 5)
        y = layer.apply(variables, x)
        assert y.shape == out_shape
        expected = reference(np.asarray(x, np.float64), np.asarray(w, np.float64))
        np.testing.assert_allclose(y, expected, atol=1e-4)


@pytest.mark.parametrize("sampling", ["k4", "k3"])
def test_networks_shapes_and_conv_impls_agree(sampling):
    """48x48 in, 48x48 out, a 4x4 patch map; "fast" and "native" are the same function."""
    from ganjax.models.cyclegan import PatchDiscriminator, ResnetGenerator

    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 48, 48, 1), minval=-1, maxval=1)
    outs = {}
    for impl in ("fast", "native"):
        g = ResnetGenerator(channels=1, width=4, num_blocks=1, sampling=sampling, conv_impl=impl)
        d = PatchDiscriminator(width=4, num_layers=3, conv_impl=impl)
        gv = g.init(jax.random.PRNGKey(1), x)
        dv = d.init(jax.random.PRNGKey(2), x)

        def loss(gp, dp):
            y = g.apply({"params": gp}, x)
            score, feats = d.apply({"params": dp}, y, features=True)
            return jnp.sum(score) + 0.1 * jnp.sum(feats**2), (y, score, feats)

        (value, aux), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
            gv["params"], dv["params"])
        outs[impl] = (value, aux, grads)
    y, score, feats = outs["fast"][1]
    assert y.shape == x.shape and score.shape == (2, 4, 4, 1) and feats.shape == (2, 5, 5, 32)
    assert float(jnp.abs(y).max()) <= 1.0
    flat_f, flat_n = jax.tree.leaves(outs["fast"]), jax.tree.leaves(outs["native"])
    for a, b in zip(flat_f, flat_n):
        # float32 sums in another order: the error scales with the tensor's largest entries (the
        # gradients reach ~60 here), so the tolerance is relative to them, not to each element.
        scale = max(1.0, float(np.abs(np.asarray(b)).max()))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5 * scale)


# --------------------------------------------------------------------------------------------
# End to end on a FER2013 CSV.
# --------------------------------------------------------------------------------------------

NEUTRAL, HAPPY = 6, 3


@pytest.fixture(scope="module")
def fer_manual(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer_cyclegan")
    rng = np.random.default_rng(0)
    labels = [NEUTRAL] * 8 + [HAPPY] * 8 + [0] * 2 + [NEUTRAL] * 3 + [HAPPY] * 3
    usages = ["Training"] * 18 + ["PublicTest"] * 6
    faces = rng.integers(0, 256, (len(labels), 48, 48), dtype=np.uint8)
    fer2013.write_csv(str(root / "fer2013.csv"), faces, labels, usages)
    return root


def tiny_fer_config(repo_root, tmp_path, manual, name="cyclegan_fer"):
    c = load_config(repo_root, name)
    c.data.data_dir = str(tmp_path / "tfds")
    c.data.manual_dir = str(manual)
    c.data.image_size = 24
    c.data.jitter = 2
    c.train.num_steps = 4
    c.train.sample_every = 2
    c.train.checkpoint_every = 100
    c.train.log_every = 1
    return c


def test_tiny_run_on_a_fer_csv(repo_root, tmp_path, fer_manual):
    config = tiny_fer_config(repo_root, tmp_path, fer_manual)
    config.model.conv_impl = "native"  # compiles 3x faster; test_networks_..._agree covers "fast"
    config.cyclegan.weighted_cycle = True
    config.cyclegan.pool_size = 6  # fills after 2 steps of batch 4 (gets 4 x 4 = 16 fakes)
    workdir = tmp_path / "run"
    state = train.train_and_evaluate(config, str(workdir))
    assert int(state.step) == 4
    assert set(state.networks()) == {"g_ab", "g_ba", "d_a", "d_b"}
    assert int(state.pool_a.count) == 6 and int(state.pool_b.count) == 6
    assert float(jnp.abs(state.pool_b.images).min()) > 0  # every slot holds a fake
    rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "train/g_loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    # gamma(step) = step / num_steps is logged at the step it was used (steps 0..3).
    np.testing.assert_allclose([r["train/gamma"] for r in train_rows], [0.0, 0.25, 0.5, 0.75])
    for r in train_rows:
        assert all(np.isfinite(v) for v in r.values())
        assert r["train/identity"] > 0 and r["train/cycle_a"] >= 0
    assert sorted(os.listdir(workdir / "samples")) == ["samples_0000002.png", "samples_0000004.png"]
    grid = np.asarray(Image.open(workdir / "samples" / "samples_0000004.png"))
    # sample_cols (4) rows of [a | G(a) | F(G(a)) | b | F(b) | G(F(b))], 24x24 with 2 px gaps.
    assert grid.shape == (4 * 26 + 2, 6 * 26 + 2)
    # The first column holds the first Neutral faces of the public test split (rows 18..20, 18).
    first = np.asarray(Image.open(workdir / "samples" / "samples_0000002.png"))
    np.testing.assert_array_equal(first[2:26, 2:26], grid[2:26, 2:26])
    assert os.listdir(workdir / "tensorboard")


def test_wasserstein_step_with_gp_and_clipping(repo_root):
    config = load_config(repo_root, "wcyclegan_fer")
    config.model.conv_impl = "native"  # compiles 3x faster; test_networks_..._agree covers "fast"
    config.gan.d_steps = 2
    info = DataInfo("synthetic", (16, 16, 1), 1, ("x",), 10)
    config.cyclegan.d_layers = 2
    gan = gans.create(config, info)
    assert gan.n_micro == 2
    key = jax.random.PRNGKey(0)
    batch = {
        "a": jax.random.uniform(key, (2, 2, 16, 16, 1), minval=-1, maxval=1),
        "b": jax.random.uniform(jax.random.fold_in(key, 1), (2, 2, 16, 16, 1), minval=-1, maxval=1),
    }
    state = gan.init_state(key)
    new, metrics = jax.jit(gan.train_step)(state, batch)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert float(metrics["d_b_gradient_penalty"]) > 0
    # Two critic updates per step: Adam's count says so; the generators moved once.
    assert int(new.d_b.opt_state[0].count) == 2
    assert int(new.g_ab.opt_state[0].count) == 1
    assert int(new.pool_a.count) == 4  # 2 critic updates x batch 2
    # Weight clipping keeps every critic weight in [-c, c].
    config.gan.gp_weight = 0.0
    config.gan.weight_clip = 0.01
    gan = gans.create(config, info)
    new, metrics = jax.jit(gan.train_step)(gan.init_state(key), batch)
    for d in (new.d_b, new.d_a):
        assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(d.params)) <= 0.01 + 1e-7
    with pytest.raises(ValueError, match="real_target"):
        config.gan.real_target = 0.9
        gans.create(config, info)


# --------------------------------------------------------------------------------------------
# Resume.
# --------------------------------------------------------------------------------------------


@pytest.fixture
def compilation_cache(tmp_path):
    """A persistent compilation cache for one test: its three runs compile the same step once."""
    from jax._src import compilation_cache as cc

    old = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs,
           jax.config.jax_persistent_cache_min_entry_size_bytes)
    cc.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    cc.reset_cache()
    jax.config.update("jax_compilation_cache_dir", old[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old[1])
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", old[2])


def test_resume_gives_the_same_state(repo_root, tmp_path, compilation_cache):
    """4 steps in one go == 2 steps, stop, re-run to 4: every leaf, pools included."""
    config = load_config(repo_root, "cyclegan_digits")
    config.model.conv_impl = "native"  # compiles 3x faster; test_networks_..._agree covers "fast"
    config.optim.schedule = "constant"
    config.data.image_size = 16
    config.cyclegan.pool_size = 6
    config.train.num_steps = 4
    config.train.sample_every = 100
    config.train.checkpoint_every = 100
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    config.train.num_steps = 2
    first = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert int(first.step) == 2 and int(first.pool_a.count) == 6
    config.train.num_steps = 4
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert int(resumed.step) == 4
    # Every leaf (the static apply functions of two runs are different objects).
    assert_trees_equal(jax.device_get(jax.tree.leaves(straight)), jax.device_get(jax.tree.leaves(resumed)))
    assert len(jax.tree.leaves(straight)) == len(jax.tree.leaves(resumed)) == 100
    assert sorted(os.listdir(tmp_path / "resumed" / "checkpoints")) == ["2", "4"]

    # The translate job on that run: PNGs and a tfds dataset labelled with the target class.
    import tensorflow_datasets as tfds

    from ganjax import translate

    config.jobs.translate.split = "test"
    config.jobs.translate.limit = 5
    config.jobs.translate.batch_size = 4
    summary = translate.run(config, str(tmp_path / "resumed"))
    assert summary["num_images"] == 5 and summary["label"] == "7" and summary["checkpoint_step"] == 4
    pngs = sorted(os.listdir(summary["png_dir"]))
    assert len(pngs) == 5 and np.asarray(Image.open(os.path.join(summary["png_dir"], pngs[0]))).shape == (16, 16)
    ds = tfds.builder_from_directory(summary["tfds_dir"]).as_dataset(split="train")
    examples = list(ds.as_numpy_iterator())
    assert len(examples) == 5 and {int(e["label"]) for e in examples} == {7}
    # The stored images are G applied to the first 5 test images of domain a (digit 1).
    from ganjax.data import pipeline

    src, _ = pipeline.load_domain_split(config.data, "a", "test")
    x = np.stack([e["image"] for e in src.take(5).as_numpy_iterator()]).astype(np.float32) / 127.5 - 1
    gan = gans.create(config, pipeline.open_domain(config.data, "a").info)
    want = np.clip(np.round((np.asarray(gan.translate(resumed, jnp.asarray(x))) + 1) * 127.5), 0, 255)
    got = np.stack([np.asarray(Image.open(os.path.join(summary["png_dir"], p))) for p in pngs])
    assert np.abs(got.astype(int) - want[..., 0].astype(int)).max() <= 1
