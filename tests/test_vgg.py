"""VGG-16 features: the conversion of torchvision's `vgg16` proved on random weights, the .pth
and .npz round trips, and the one-line error for a missing weights file.

Tolerance of the equivalence: rtol 1e-4, atol 1e-4 in float32 (measured: <= 3e-6 absolute on
features of magnitude up to 2). It needs torch and torchvision (the `torch` extra) and is
skipped without them.
"""


import jax
import numpy as np
import pytest

from tests import helpers
from ganjax import distances
from ganjax import config as config_lib
from ganjax.errors import ConfigError
from ganjax.models import vgg

RTOL = ATOL = 1e-4


@pytest.fixture(scope="module")
def torchvision_vgg16():
    """torchvision's own vgg16 (random weights: its default initialisation, seed 0) and its
    `features` state_dict (with a small stand-in for the classifier, which is dropped)."""
    torch, torchvision = helpers.import_torch_model_code("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.vgg16(weights=None).eval()
    state = {k: v for k, v in net.state_dict().items() if k.startswith("features.")}
    state["classifier.0.weight"] = torch.zeros(4, 6)  # the real one is 4096 x 25088
    state["classifier.0.bias"] = torch.zeros(4)
    return torch, net, state


def _torch_features(torch, net, images, name, resize=0):
    """torchvision's features[: conv + ReLU] on ganjax images (NHWC in [-1, 1]) -> NHWC."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).expand(-1, 3, -1, -1)
    x = (x + 1.0) / 2.0
    if resize:
        x = torch.nn.functional.interpolate(x, size=(resize, resize), mode="bilinear",
                                            align_corners=False)
    mean = torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(vgg.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = net.features[: vgg.TORCH_INDEX[name] + 2]((x - mean) / std)
    return out.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("shape, resize", [((2, 28, 28, 1), 0), ((2, 33, 30, 3), 0),
                                           ((1, 20, 20, 1), 36)])
def test_matches_torchvision_vgg16_at_every_layer(torchvision_vgg16, shape, resize):
    torch, net, state = torchvision_vgg16
    variables = vgg.convert_state_dict(state)
    images = np.random.default_rng(sum(shape)).uniform(-1, 1, shape).astype(np.float32)
    got = jax.jit(vgg.feature_fn(variables, vgg.LAYERS, resize))(images)  # all 13 (>= 16 px)
    assert len(got) == len(vgg.LAYERS)
    for name, features in zip(vgg.LAYERS, got):
        expected = _torch_features(torch, net, images, name, resize)
        assert features.shape == expected.shape, name
        np.testing.assert_allclose(np.asarray(features), expected, rtol=RTOL, atol=ATOL,
                                   err_msg=name)


def test_features_in_the_order_asked_and_only_needed_layers(torchvision_vgg16):
    _, _, state = torchvision_vgg16
    variables = vgg.convert_state_dict(state)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    both = vgg.feature_fn(variables, ("conv3_2", "conv1_1"))(images)
    assert [f.shape for f in both] == [(2, 4, 4, 256), (2, 16, 16, 64)]
    alone = vgg.feature_fn(variables, ("conv1_1",))(images)[0]
    np.testing.assert_array_equal(np.asarray(alone), np.asarray(both[1]))
    model = vgg.VGG16Features(("conv2_1",))
    shapes = jax.eval_shape(model.init, jax.random.key(0), images)
    assert sorted(shapes["params"]) == ["conv1_1", "conv1_2", "conv2_1"]


def test_pth_and_npz_round_trip(torchvision_vgg16, tmp_path, capsys):
    torch, _, state = torchvision_vgg16
    expected = vgg.convert_state_dict(state)
    pth, npz = tmp_path / "vgg16.pth", tmp_path / "vgg16_features.npz"
    torch.save(state, pth)
    from_pth = vgg.load_variables(pth)
    vgg.main([str(pth), str(npz)])  # python -m ganjax.models.vgg SRC.pth DST.npz
    assert "eval.vgg16_weights" in capsys.readouterr().out
    from_npz = vgg.load_variables(npz)
    for loaded in (from_pth, from_npz):
        assert jax.tree.structure(loaded) == jax.tree.structure(expected)
        for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(expected)):
            np.testing.assert_array_equal(a, b)
    assert sorted(from_npz["params"]) == sorted(vgg.LAYERS)
    kernel = from_npz["params"]["conv2_1"]["kernel"]
    np.testing.assert_array_equal(kernel, state["features.5.weight"].numpy().transpose(2, 3, 1, 0))
    # A wrong shape or a foreign entry is named.
    flat = dict(np.load(npz))
    flat["params/conv4_3/kernel"] = np.zeros((3, 3, 512, 10), np.float32)
    np.savez(tmp_path / "bad.npz", **flat)
    with pytest.raises(ValueError, match="conv4_3/kernel"):
        vgg.load_variables(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="features.1.weight"):
        vgg.convert_state_dict({**state, "features.1.weight": np.zeros(3)})
    with pytest.raises(ValueError, match="missing.*conv5_3"):
        vgg.convert_state_dict({k: v for k, v in state.items() if k != "features.28.weight"})
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="Unknown VGG-16 weights format"):
        vgg.load_variables(tmp_path / "weights.bin")


def test_missing_weights_file_is_a_one_line_config_error(tmp_path):
    missing = tmp_path / "vgg16-397923af.pth"
    for path in (missing, None, ""):
        with pytest.raises(vgg.VGGWeightsNotFoundError) as info:
            vgg.load_variables(path)
        message = str(info.value)
        assert isinstance(info.value, ConfigError) and "\n" not in message
        for part in (vgg.WEIGHTS_URL, "IMAGENET1K_V1", "eval.vgg16_weights",
                     "python -m ganjax.models.vgg SRC.pth DST.npz"):
            assert part in message
    # distances.get raises it before anything else (before checking layers or loading).
    config = config_lib.base_config()
    config.eval.vgg16_weights = str(missing)
    config.eval.vgg16_layers = "conv9_9"
    with pytest.raises(vgg.VGGWeightsNotFoundError, match="vgg16-397923af.pth"):
        distances.get("vgg", config, str(tmp_path), image_shape=(28, 28, 1))


def test_bad_layers_and_small_images():
    with pytest.raises(ConfigError, match="conv9_9.*conv1_1"):
        vgg.check_layers(["conv4_3", "conv9_9"])
    images = np.zeros((1, 15, 15, 1), np.float32)
    with pytest.raises(ValueError, match="too small for conv5_1"):
        vgg.VGG16Features(("conv5_1",)).init(jax.random.key(0), images)
    with pytest.raises(ValueError, match="1 or 3"):
        vgg.VGG16Features().init(jax.random.key(0), np.zeros((1, 16, 16, 2), np.float32))
