"""k-nearest neighbours against brute-force numpy and scikit-learn, and the neighbour grid / PNG.

References: numpy float64 brute force with a stable sort (the documented tie rule: equal
squared distances keep the lower reference index) and scikit-learn's
`NearestNeighbors(algorithm="brute", metric="sqeuclidean")` in float64, which is exact on
integer images (all products and sums are integers below 2^53).
"""

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import NearestNeighbors

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
    # tolerance 1e-6 (exact float64 distances; copies give exactly 0).
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
    with pytest.raises(ValueError, match="NaN or inf"):
        knn.nearest_neighbours(np.full((1, 5), np.nan), reference, k=1)
    empty = knn.nearest_neighbours(np.zeros((0, 5)), reference, k=3)
    assert empty.indices.shape == empty.distances.shape == (0, 3)


def _sklearn(queries, reference, k):
    """(indices, squared distances) from scikit-learn's float64 brute force."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="sqeuclidean").fit(r)
    sq, idx = nn.kneighbors(q)
    return idx, sq


def _near_copies(base, sq_distances, rng):
    """Copies of uint8 `base` at the given squared distances: +-1 at that many distinct pixels."""
    flat = base.reshape(-1)
    copies = []
    for sq in sq_distances:
        copy = flat.astype(np.int16)
        where = rng.choice(flat.size, sq, replace=False)
        copy[where] += np.where(flat[where] < 255, 1, -1)
        copies.append(copy.astype(np.uint8).reshape(base.shape))
    return np.stack(copies)


def _near_duplicate_set(seed):
    """uint8 32x32x3: 20 copies of a random base image at squared distances 1..20 and 300 random
    decoys, shuffled. Returns (base, reference, where): where[s - 1] is the row at distance s."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    copies = _near_copies(base, range(1, 21), rng)
    decoys = rng.integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    reference = np.concatenate([copies, decoys])
    order = rng.permutation(len(reference))
    return base, reference[order], np.argsort(order)[:20]  # position of copy s-1 in reference


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float64])  # device / host centring
def test_nearest_neighbours_rank_near_duplicates_exactly_like_sklearn(dtype):
    # The memorisation case: with float32 ||q||^2 - 2 q.r + ||r||^2 (||q||^2 ~ 7e7 here, float32
    # spacing 8) the previous version returned squared distances like [2, 6, 7, 9] for the base
    # image's 4 nearest, not [1, 2, 3, 4].
    base, reference, where = _near_duplicate_set(0)
    rng = np.random.default_rng(1)
    queries = np.concatenate([base[None], reference[where[[0, 4, 9]]],  # base and 3 copies
                              rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)])
    queries, reference = queries.astype(dtype), reference.astype(dtype)
    for k in (4, 10, 25):
        indices, distances = knn.nearest_neighbours(queries, reference, k=k, chunk_size=128)
        expected_idx, expected_sq = _sklearn(queries, reference, k)
        # Exact integers on both sides: compare exactly (distances are sqrt of the same float64).
        np.testing.assert_array_equal(distances, np.sqrt(expected_sq))
        unique = np.diff(expected_sq, axis=1) > 0  # ties: compared by the tie rule below
        assert unique[0].all()
        np.testing.assert_array_equal(indices[0], expected_idx[0])
        m = min(k, 20)  # the base image's neighbours are its copies at 1, 2, ..., 20
        np.testing.assert_array_equal(distances[0, :m], np.sqrt(np.arange(1, m + 1)))
        np.testing.assert_array_equal(indices[0, :m], where[:m])
        brute_idx, brute_d = _brute_force(queries, reference, k)  # stable: lower index first
        np.testing.assert_array_equal(indices, brute_idx)
        np.testing.assert_array_equal(distances, brute_d)


def test_nearest_neighbours_near_duplicates_float_images_like_sklearn():
    # The same set as float32 images in [-1, 1] (one grey level = 1/127.5): squared distances
    # s / 127.5^2. Reference: float64 sklearn (expansion error ~1e-13, distances >= 6e-5).
    base, reference, where = _near_duplicate_set(2)
    to_float = lambda x: (x / np.float32(127.5) - 1).astype(np.float32)  # noqa: E731
    queries, reference = to_float(base[None]), to_float(reference)
    indices, distances = knn.nearest_neighbours(queries, reference, k=8)
    expected_idx, expected_sq = _sklearn(queries, reference, 8)
    np.testing.assert_array_equal(indices, expected_idx)
    np.testing.assert_array_equal(indices[0], where[:8])
    # tolerance 1e-10 absolute: sklearn's float64 expansion ||q||^2 - 2 q.r + ||r||^2 is off
    # by ~eps * ||q||^2 (measured 3e-12) on distances >= 6e-5; our float64 sum (q - r)^2 equals
    # the stable numpy brute force exactly.
    np.testing.assert_allclose(distances ** 2, expected_sq, rtol=0, atol=1e-10)
    brute_idx, brute_d = _brute_force(queries, reference, 8)
    np.testing.assert_array_equal(indices, brute_idx)
    np.testing.assert_array_equal(distances, brute_d)
    # tolerance 1e-6 relative: grey levels k / 127.5 - 1 are rounded to float32.
    np.testing.assert_allclose(distances[0] ** 2, np.arange(1, 9) / 127.5**2, rtol=1e-6)
    assert np.all(np.diff(expected_sq[0]) > 0)  # no ties, so sklearn's order is the order


def test_nearest_neighbours_float64_features_with_large_offset():
    # Features around 1e4 whose near-copies differ by 1e-9 (float32 cannot even represent the
    # difference): the float32 pass only has to bring the copies into the candidate set; the
    # float64 re-ranking orders them.
    rng = np.random.default_rng(4)
    reference = 1e4 + rng.normal(size=(500, 16))
    copies_at = rng.choice(500, 6, replace=False)
    base = reference[copies_at[0]].copy()
    for step, row in enumerate(copies_at[1:], start=1):
        reference[row] = base + 1e-9 * step * (np.arange(16) == step)
    queries = np.stack([base, reference[7] + 1e-3])
    indices, distances = knn.nearest_neighbours(queries, reference, k=6, chunk_size=64)
    np.testing.assert_array_equal(indices[0], copies_at)  # 0, then 1e-9, 2e-9, ... apart
    brute_idx, brute_d = _brute_force(queries, reference, 6)
    np.testing.assert_array_equal(indices, brute_idx)
    np.testing.assert_array_equal(distances, brute_d)


def test_nearest_neighbours_ties_keep_lower_index(monkeypatch):
    # 30 exact copies of the query and 25 copies at squared distance 1 hidden among decoys.
    # Equal distances rank by reference index. With k = 5 there are more near-ties than the
    # first candidate set holds (K' = max(2k, k + 16) = 21), so the search must widen it.
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)
    reference = rng.integers(0, 256, (400, 8, 8, 1), dtype=np.uint8)
    exact_at = np.sort(rng.choice(400, 30, replace=False))
    reference[exact_at] = base
    rest = np.setdiff1d(np.arange(400), exact_at)
    one_at = np.sort(rng.choice(rest, 25, replace=False))
    reference[one_at] = _near_copies(base, [1] * 25, rng)
    widths = []
    candidates = knn._candidates

    def recording(*args, width, **kwargs):
        widths.append(width)
        return candidates(*args, width=width, **kwargs)

    monkeypatch.setattr(knn, "_candidates", recording)
    queries = np.stack([base, reference[rest[0]]])
    indices, distances = knn.nearest_neighbours(queries, reference, k=40, chunk_size=100)
    assert widths == [80]  # K' = 2k holds all 55 near-ties
    np.testing.assert_array_equal(indices[0], np.concatenate([exact_at, one_at[:10]]))
    np.testing.assert_array_equal(distances[0], [0.0] * 30 + [1.0] * 10)
    brute_idx, brute_d = _brute_force(queries, reference, 40)
    np.testing.assert_array_equal(indices, brute_idx)
    np.testing.assert_array_equal(distances, brute_d)
    _, expected_sq = _sklearn(queries, reference, 40)  # its tie order is unspecified
    np.testing.assert_array_equal(distances, np.sqrt(expected_sq))
    widths.clear()
    indices, distances = knn.nearest_neighbours(base[None], reference, k=5)
    assert widths == [21, 84]  # not provably enough, then 4 K'
    np.testing.assert_array_equal(indices[0], exact_at[:5])
    np.testing.assert_array_equal(distances[0], 0.0)


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
