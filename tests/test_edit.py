"""Editing real images (ganjax/edit.py): encode, change one code, decode; the grid, the labelled
tfds dataset of the edits, the judge's measurement, and the one-line errors. On a tiny InfoGAN
(its categorical code named by Hungarian matching of Q; a continuous code) and a tiny cGAN (its
label)."""

import collections
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import edit, runs, train
from ganjax.data import pipeline
from ganjax.errors import ConfigError, OutputExistsError
from tests.helpers import launch, tiny_config


def _trained(tmp_path_factory, name):
    config = tiny_config(name, 10)
    workdir = str(tmp_path_factory.mktemp(name))
    train.train_and_evaluate(config, workdir)
    return config, workdir


@pytest.fixture(scope="module")
def infogan(tmp_path_factory):
    return _trained(tmp_path_factory, "infogan_mnist")


@pytest.fixture(scope="module")
def cgan(tmp_path_factory):
    return _trained(tmp_path_factory, "cgan_mnist")


def _edit_config(config, output, **keys):
    """job=edit with a few images, 4 recovery steps and a judge trained 30 steps."""
    c = config.copy_and_resolve_references()
    c.job = "edit"
    c.jobs.recover.update(steps=4, restarts=1, batch_size=4)
    c.jobs.edit.update({"num_images": 6, "judge_steps": 30, "grid_images": 3, "output": str(output), **keys})
    return c


def _dataset(tfds_dir):
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(tfds_dir)
    return builder, list(builder.as_dataset(split="train").as_numpy_iterator())


def _real_labels(config, n):
    return pipeline.load_arrays(config.data, "test", limit=n)[1]


def test_edited_inputs_change_exactly_one_code():
    from ganjax.latent import LatentSpec

    latent = LatentSpec(noise=3, noise_prior="uniform", categorical=(4, 2), continuous=2)
    vector = latent.vector(latent.sample(jax.random.PRNGKey(0), 5))
    v, c = edit.edited_inputs(latent, "cat", 1, 0, vector, None)
    np.testing.assert_array_equal(v[:, 7:9], np.tile([1.0, 0.0], (5, 1)))
    np.testing.assert_array_equal(np.delete(v, [7, 8], 1), np.delete(vector, [7, 8], 1))
    v, _ = edit.edited_inputs(latent, "cont", 1, 0.5, vector, None)
    np.testing.assert_allclose(v[:, 10], vector[:, 10] + 0.5)
    np.testing.assert_array_equal(np.delete(v, 10, 1), np.delete(vector, 10, 1))
    conditional = LatentSpec(noise=3, num_classes=10)
    v, c = edit.edited_inputs(conditional, "label", 0, 7, vector[:, :3], jnp.arange(5))
    np.testing.assert_array_equal(c, [7] * 5) and np.testing.assert_array_equal(v, vector[:, :3])


def test_edit_infogan_codes_through_launch(repo_root, infogan, tmp_path):
    """Every value of the categorical code on 6 held-out digits: the grid, the dataset (each
    edit labelled with the class its code value is matched to, except those of the original's
    own class), and the judge's measurement with the style correlations."""
    config, workdir = infogan
    out = tmp_path / "edit"
    result = launch(repo_root, "--config=configs/infogan_mnist.py:tiny", f"--workdir={workdir}", "--config.job=edit",
                    "--config.model.conv_impl=native", "--config.jobs.edit.num_images=6",
                    "--config.jobs.edit.judge_steps=30", "--config.jobs.edit.grid_images=3",
                    "--config.jobs.recover.steps=4", "--config.jobs.recover.restarts=1",
                    "--config.jobs.recover.batch_size=4", f"--config.jobs.edit.output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.load(open(out / "edit.json"))
    assert summary["encoder"] == "recovery" and summary["code"] == "cat"  # no predictor: auto = recovery
    assert sorted(summary["values"]) == list(range(10)) and len(summary["columns"]) == 12
    mapping = {int(k): int(v) for k, v in summary["code_to_class"].items()}
    assert sorted(mapping) == list(range(10)) and sorted(mapping.values()) == list(range(10))
    # Columns in the order of the classes the codes draw.
    assert [mapping[v] for v in summary["values"]] == list(range(10))
    labels = _real_labels(config, 6)
    want = collections.Counter(mapping[v] for y in labels for v in range(10) if mapping[v] != y)
    builder, examples = _dataset(summary["tfds_dir"])
    assert builder.info.features["label"].names == [str(d) for d in range(10)]
    assert collections.Counter(int(e["label"]) for e in examples) == want and len(examples) == 54
    assert examples[0]["image"].shape == (28, 28, 1) and examples[0]["image"].dtype == np.uint8
    m = summary["measurement"]
    assert m["num_edits"] == 54 and 0.0 <= m["edit_accuracy"] <= 1.0 and 0.0 <= m["judge_test_accuracy"] <= 1.0
    assert set(m["edit_accuracy_per_class"]) <= {str(d) for d in range(10)}
    style = summary["style"]
    assert set(style["original_vs_edit"]) == set(style["original_vs_reconstruction"]) == {"slant", "ink_mass"}
    from PIL import Image

    assert Image.open(out / "edit_grid.png").size == (2 + 12 * 30, 2 + 3 * 30)
    assert "edits as the class they should show" in open(out / "edit.md").read()


def test_edit_a_continuous_code_keeps_the_originals_class(infogan, tmp_path):
    config, workdir = infogan
    summary = edit.run(_edit_config(config, tmp_path / "cont", code="cont", index=1, edits="-0.5,0.5"), workdir)
    assert summary["values"] == [-0.5, 0.5] and set(summary["style"]["mean_change_per_delta"]) == {"-0.5", "0.5"}
    _, examples = _dataset(summary["tfds_dir"])
    labels = _real_labels(config, 6)
    assert collections.Counter(int(e["label"]) for e in examples) == collections.Counter(np.repeat(labels, 2).tolist())


def test_edit_a_cgan_label(cgan, tmp_path):
    """A conditional generator keeps its recovered z and is told each other class."""
    config, workdir = cgan
    summary = edit.run(_edit_config(config, tmp_path / "label", edits="1,4,7"), workdir)
    assert summary["code"] == "label" and summary["values"] == [1, 4, 7] and summary["encoder"] == "recovery"
    labels = _real_labels(config, 6)
    want = collections.Counter(v for y in labels for v in (1, 4, 7) if v != y)
    builder, examples = _dataset(summary["tfds_dir"])
    assert collections.Counter(int(e["label"]) for e in examples) == want
    assert summary["measurement"]["num_edits"] == sum(want.values())
    # The edits to 4 are G(z, 4) for the recovered z of each image not of class 4.
    saved = np.load(tmp_path / "label" / "latents.npz")
    trained = runs.load_trained(workdir)
    keep = saved["label"] != 4
    want = trained.algorithm.generate(trained.state, {"z": jnp.asarray(saved["vector"][keep]),
                                                      "label": jnp.full((int(keep.sum()),), 4)})
    want = np.clip(np.round((np.asarray(want) + 1) * 127.5), 0, 255).reshape(int(keep.sum()), -1)
    got = np.stack([e["image"] for e in examples if e["label"] == 4]).reshape(int(keep.sum()), -1)
    np.testing.assert_allclose(np.sort(got, 0), np.sort(want, 0), atol=1)


def test_edit_one_line_errors(infogan, cgan, tmp_path):
    config, workdir = infogan

    def error(kind, match, base=config, where=workdir, **keys):
        recover_keys = {k[len("recover_"):]: keys.pop(k) for k in list(keys) if k.startswith("recover_")}
        c = _edit_config(base, keys.pop("output", tmp_path / "never"), **keys)
        c.jobs.recover.update(recover_keys)
        with pytest.raises(kind, match=match):
            edit.run(c, where)
        assert not os.path.exists(tmp_path / "never" / "edit.json")

    error(ConfigError, r"index=1: the generator has 1 categorical code\(s\) \(index 0..0\)", code="cat", index=1)
    error(ConfigError, r"index=2: the generator has 2 continuous code\(s\)", code="cont", index=2)
    error(ConfigError, "code=label edits the class a conditional generator is told", code="label")
    error(ConfigError, r"\[12.0\] are not values of the cat code \(0..9\)", edits="3,12")
    error(ConfigError, "encoder must be one of", encoder="vae")
    error(ConfigError, "No predictor in", encoder="predictor", recover_predictor=str(tmp_path / "none"))
    error(ConfigError, r"config.jobs.recover.distance='psnr': unknown distance", recover_distance="psnr")
    cgan_config, cgan_dir = cgan
    error(ConfigError, "code=cat: the generator has no categorical code", base=cgan_config, where=cgan_dir, code="cat")
    done = tmp_path / "done"
    os.makedirs(done)
    open(done / "edit.json", "w").close()
    error(OutputExistsError, "already holds results", output=str(done))
