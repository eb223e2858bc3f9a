"""FID Inception-v3: weight-file errors, .npz round trip, and equivalence with pytorch-fid.

The equivalence test needs torch, torchvision and pytorch-fid (the `torch` extra: pip install -e ".[test,torch]")
and is skipped without them.
"""


import jax
import numpy as np
import pytest

from tests import helpers
from ganjax.metrics import inception


def test_missing_weights_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    for path in (missing, None, ""):
        with pytest.raises(inception.InceptionWeightsNotFoundError) as info:
            inception.load_variables(path)
        assert isinstance(info.value, FileNotFoundError)
        message = str(info.value)
        assert inception.FID_WEIGHTS_URL in message
        assert "eval.inception_weights" in message


def test_unknown_suffix_is_rejected(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="Unknown FID Inception weights format"):
        inception.load_variables(path)


def _random_variables(seed=0):
    shapes = jax.eval_shape(inception.FIDInceptionV3().init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 299, 299, 3), np.float32))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32), shapes)


def test_npz_round_trip_and_shape_check(tmp_path):
    variables = _random_variables()
    path = tmp_path / "fid_inception.npz"
    inception.save_variables(variables, path)
    loaded = inception.load_variables(path)
    assert jax.tree.structure(loaded) == jax.tree.structure(variables)
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(variables)):
        np.testing.assert_array_equal(a, b)
    # A wrong shape is named in the error.
    flat = dict(np.load(path))
    flat["params/Mixed_7c/branch1x1/conv/kernel"] = np.zeros((1, 1, 2048, 10), np.float32)
    np.savez(tmp_path / "bad.npz", **flat)
    with pytest.raises(ValueError, match="Mixed_7c/branch1x1/conv/kernel"):
        inception.load_variables(tmp_path / "bad.npz")


def test_converter_rejects_foreign_state_dict():
    with pytest.raises(ValueError, match="layer1.0.downsample"):
        inception.convert_state_dict({"layer1.0.downsample.weight": np.zeros((3, 3))})


@pytest.fixture(scope="module")
def pytorch_fid_reference():
    """pytorch_fid.inception.InceptionV3 built by its own code with random weights, plus the
    test images (NHWC in [-1, 1]) and the network's state_dict."""
    torch, pfid = helpers.import_torch_model_code("pytorch_fid.inception")
    torch.manual_seed(0)
    # The weight "download" returns the freshly built network's own state_dict.
    built = []
    real_inception_v3 = pfid._inception_v3

    def recording_inception_v3(*args, **kwargs):
        built.append(real_inception_v3(*args, **kwargs))
        return built[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pfid, "_inception_v3", recording_inception_v3)
        patch.setattr(pfid, "load_state_dict_from_url", lambda *a, **k: built[-1].state_dict())
        reference = pfid.InceptionV3([pfid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    net = built[-1]
    assert isinstance(net.Mixed_7c, pfid.FIDInceptionE_2)
    assert isinstance(net.Mixed_5b, pfid.FIDInceptionA)

    rng = np.random.default_rng(0)
    images = {  # RGB upsampled; gray downsampled (bilinear without antialias in both)
        "rgb_32": rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32),
        "gray_320x310": rng.uniform(-1, 1, (1, 320, 310, 1)).astype(np.float32),
    }
    # Random BatchNorm affine parameters; running statistics calibrated on the test inputs,
    # with the running variance set to the raw second moment E[x^2] so that no near-constant
    # channel amplifies float32 round-off (activations stay O(1) through 94 conv layers).
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.reset_running_stats()
                module.momentum = None  # cumulative average over the calibration batches
        reference.train()
        for x in images.values():
            reference(_to_torch(torch, x))
        reference.eval()
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var += module.running_mean**2
    return torch, reference, net.state_dict(), images


def _to_torch(torch, x):
    """NHWC in [-1, 1] -> pytorch-fid's input: NCHW in [0, 1], 3 channels."""
    return torch.from_numpy((x + 1.0) / 2.0).permute(0, 3, 1, 2).expand(-1, 3, -1, -1)


def _torch_features(torch, reference, x):
    with torch.no_grad():
        return reference(_to_torch(torch, x))[0].reshape(x.shape[0], -1).numpy()


def test_matches_pytorch_fid_inception_float32(pytorch_fid_reference):
    torch, reference, state_dict, images = pytorch_fid_reference
    variables = inception.convert_state_dict(state_dict)
    apply = jax.jit(inception.FIDInceptionV3().apply)
    for name, x in images.items():
        expected = _torch_features(torch, reference, x)
        got = np.asarray(apply(variables, x))
        assert got.shape == (x.shape[0], 2048)
        scale, deviation = np.abs(expected).max(), np.abs(got - expected).max()
        print(f"float32 {name}: max |jax - torch| = {deviation:.2e} (max |feature| {scale:.2f})")
        assert 0.5 < scale < 50  # features are O(1): an absolute tolerance is meaningful
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)  # tolerance: 1e-4 abs


def test_matches_pytorch_fid_inception_float64(pytorch_fid_reference):
    # In float64 both networks agree to round-off: the port is exact, not just close. The
    # resize is covered above; here 75x75 (the smallest valid input) goes in unresized.
    torch, reference, state_dict, _ = pytorch_fid_reference
    x = np.random.default_rng(1).uniform(-1, 1, (2, 75, 75, 3))  # float64
    reference.double()
    reference.resize_input = False
    try:
        expected = _torch_features(torch, reference, x)
    finally:
        reference.float()
        reference.resize_input = True
    with jax.enable_x64(True):
        variables = jax.tree.map(lambda a: np.asarray(a, np.float64),
                                 inception.convert_state_dict(state_dict))
        model = inception.FIDInceptionV3(resize_input=False)
        got = np.asarray(jax.jit(model.apply)(variables, x))
    assert got.dtype == np.float64 and got.shape == (2, 2048)
    deviation = np.abs(got - expected).max()
    print(f"float64 75x75: max |jax - torch| = {deviation:.2e} (max |feature| "
          f"{np.abs(expected).max():.2f})")
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)  # tolerance: 1e-9 abs
