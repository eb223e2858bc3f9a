"""k-nearest neighbours against brute-force numpy, and the neighbour grid / PNG."""

import numpy as np
import pytest
from PIL import Image

from ganjax.metrics import knn


def _brute_force(queries, reference, k):
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    distances = np.sqrt(((q[:, None, :] - r[None, :, :])**2).sum(-1))
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(distances, order, axis=1)


@pytest.mark.parametrize("chunk_size", [7, 64, 1000])  # uneven last chunk, one chunk
def test_nearest_neighbours_match_brute_force(chunk_size):
    rng = np.random.default_rng(0)
    reference = rng.uniform(-1, 1, (150, 6, 6, 1)).astype(np.float32)
    queries = rng.uniform(-1, 1, (9, 6, 6, 1)).astype(np.float32)
    queries[:3] = reference[[5, 77, 149]]  # exact copies: memorised samples
    indices, distances = knn.nearest_neighbours(queries, reference, k=4, chunk_size=chunk_size)
    expected_idx, expected_dist = _brute_force(queries, reference, 4)
    np.testing.assert_array_equal(indices, expected_idx)
    # tolerance 1e-6 (exact float64 recomputation of the winners; copies give exactly 0).
    np.testing.assert_allclose(distances, expected_dist, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(indices[:3, 0], [5, 77, 149])
    np.testing.assert_array_equal(distances[:3, 0], 0.0)


def test_nearest_neighbours_feature_space_and_errors():
    rng = np.random.default_rng(1)
    reference, queries = rng.normal(size=(40, 5)), rng.normal(size=(3, 5))
    indices, distances = knn.nearest_neighbours(queries, reference, k=40, chunk_size=16)
    expected_idx, expected_dist = _brute_force(queries, reference, 40)
    np.testing.assert_array_equal(indices, expected_idx)  # k = M: full sort
    np.testing.assert_allclose(distances, expected_dist, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="k=41"):
        knn.nearest_neighbours(queries, reference, k=41)
    with pytest.raises(ValueError, match="trailing shape"):
        knn.nearest_neighbours(queries, reference[:, :4], k=1)


def test_neighbour_grid_layout_and_png(tmp_path):
    rng = np.random.default_rng(2)
    reference = rng.uniform(-1, 1, (20, 5, 4, 3)).astype(np.float32)
    samples = reference[[3, 8]] + 0.01
    indices = np.array([[3, 0, 1], [8, 2, 4]])
    grid = knn.neighbour_grid(samples, reference, indices, padding=1, gap=2)
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * 6 + 1, 4 * 5 + 2 + 1, 3)
    to_u8 = lambda x: np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)  # noqa: E731
    np.testing.assert_array_equal(grid[1:6, 1:5], to_u8(samples[0]))
    np.testing.assert_array_equal(grid[7:12, 1 + 5 + 2:1 + 5 + 2 + 4], to_u8(reference[8]))
    np.testing.assert_array_equal(grid[7:12, 1 + 3 * 5 + 2:1 + 3 * 5 + 2 + 4], to_u8(reference[4]))
    assert np.all(grid[0] == 255)  # padding is white
    path = tmp_path / "knn.png"
    knn.save_png(grid, path)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), grid)
    gray = knn.neighbour_grid(samples[..., :1], reference[..., :1], indices)
    knn.save_png(gray, tmp_path / "gray.png")
    assert np.asarray(Image.open(tmp_path / "gray.png")).shape == gray.shape[:2]
    with pytest.raises(ValueError, match="uint8"):
        knn.save_png(grid.astype(np.float32), path)
