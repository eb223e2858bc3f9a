"""3x3 stride-1 convolution by Winograd's minimal filtering F(m x m, 3x3) (Lavin & Gray 2016).

Each m x m block of outputs is computed from the (m + 2) x (m + 2) input tile d covering it:

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A,

where (.) multiplies elementwise over the tile positions and sums over input channels: the
inner products become (m + 2)^2 independent matrix products [tiles, c_in] @ [c_in, c_out],
with (m + 2)^2 / (9 m^2) of the direct form's multiplications (0.44 for m = 2, 0.25 for
m = 4). The transforms (below; points 0, +-1, +-2 for m = 4) are short sums that XLA fuses into
elementwise loops; the kernel transform G g G^T is one small matrix product for all channel
pairs. Backward (custom VJP):

* input gradient: the full correlation of dy with the flipped, in/out-swapped kernel: the same
  algorithm on dy padded by 2, whose kernel tiles are (G (x) G) P vec(g), P flipping the taps
  (a constant matrix: no copy of the kernel), contracted over c_out;
* kernel gradient: dU[p, q] = sum_tiles V[p, q]^T (A dY A^T)[p, q] (V kept from the forward
  pass), then dk = G^T dU G.

m = 4 is used where the output sides are multiples of 4, else m = 2; the input is zero-padded
at the bottom and right to whole tiles and the output cropped, so any size works. On XLA's
CPU backend (2 cores) a 256 -> 256 layer at 12x12, batch 8, runs 3-4x faster forward and ~2x
faster backward than XLA's own convolution (benchmarks/conv_forms.py). Values match the direct
convolution to float rounding (tests/test_layers.py). The backward rule is plain JAX, so the op
is twice differentiable (gradient penalties).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# (B^T, G, A^T) of F(m x m, 3x3); Lavin & Gray 2016, eqs. (7)-(8) and their F(4x4, 3x3).
_TRANSFORMS = {
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: (
        [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}
_FLIP_TAPS = np.arange(9)[::-1]  # vec(g) of the kernel rotated by 180 degrees


def _lincomb(matrix, items):
    """[sum_j matrix[i][j] * items[j] for each row i], skipping zeros and unit multiplies."""
    out = []
    for row in matrix:
        acc = None
        for c, item in zip(row, items):
            if c == 0:
                continue
            term = item if abs(c) == 1 else item * np.float32(abs(c))
            acc = (term if c > 0 else -term) if acc is None else (acc + term if c > 0 else acc - term)
        out.append(acc)
    return out


def _both_axes(matrix, t):
    """matrix @ t @ matrix^T for a nested list t[a][b] of arrays -> out[p][q]."""
    cols = [_lincomb(matrix, [row[b] for row in t]) for b in range(len(t[0]))]  # cols[b][p]
    return [_lincomb(matrix, [col[p] for col in cols]) for p in range(len(matrix))]  # [p][q]


def _stack(t):
    return jnp.stack([jnp.stack(row) for row in t])


def _kron_g(m: int) -> np.ndarray:
    g = np.asarray(_TRANSFORMS[m][1], np.float64)
    return np.kron(g, g).astype(np.float32)  # [(p, q), (i, j)]


def _kernel_tiles(kernel: Array, m: int, flip: bool = False) -> Array:
    """U = G g G^T: [3, 3, C, O] -> [m + 2, m + 2, C, O], one small matrix product; flip=True
    gives the tiles of the kernel rotated by 180 degrees."""
    gg = _kron_g(m)
    if flip:
        gg = gg[:, _FLIP_TAPS]
    c_in, c_out = kernel.shape[2:]
    return (gg @ kernel.reshape(9, c_in * c_out)).reshape(m + 2, m + 2, c_in, c_out)


def _tile_size(out_h: int, out_w: int) -> int:
    """4 where both output sides are multiples of 4, else 2 (padding to whole tiles). Measured
    on the CycleGAN step: F(4x4) on 12x12 outputs beats F(2x2) by ~6%, but F(4x4) on 14x14
    padded to 16x16 loses ~5% to F(2x2), fewer multiplications notwithstanding."""
    return 4 if out_h % 4 == 0 and out_w % 4 == 0 else 2


def _input_tiles(x: Array, m: int) -> Array:
    """V = B^T d B for every tile d (side m + 2, stride m) of x zero-padded at the bottom and
    right to whole output tiles: [N, H, W, C] -> [m + 2, m + 2, N, T, S, C],
    T = ceil((H - 2) / m), S = ceil((W - 2) / m)."""
    t, s = -(-(x.shape[1] - 2) // m), -(-(x.shape[2] - 2) // m)
    x = jnp.pad(x, ((0, 0), (0, m * t + 2 - x.shape[1]), (0, m * s + 2 - x.shape[2]), (0, 0)))
    d = [[x[:, a : a + m * t : m, b : b + m * s : m] for b in range(m + 2)] for a in range(m + 2)]
    return _stack(_both_axes(_TRANSFORMS[m][0], d))


def _output(prod: Array, m: int, out_h: int, out_w: int) -> Array:
    """Y = A^T P A per tile: [m + 2, m + 2, N, T, S, O] -> [N, out_h, out_w, O] (crops the
    padding of `_input_tiles`)."""
    _, _, n, t, s, o = prod.shape
    y = _stack(_both_axes(_TRANSFORMS[m][2], [list(row) for row in prod]))  # [i, j, N, T, S, O]
    return y.transpose(2, 3, 0, 4, 1, 5).reshape(n, m * t, m * s, o)[:, :out_h, :out_w]


def _correlate(x: Array, u: Array, m: int, transposed: bool = False) -> tuple[Array, Array]:
    """(y, V): the VALID 3x3 correlation of x with kernel tiles u [m + 2, m + 2, C, O] and x's
    input tiles; transposed=True contracts u over O (maps O -> C) without copying it."""
    v = _input_tiles(x, m)
    spec = "pqnhwo,pqco->pqnhwc" if transposed else "pqnhwc,pqco->pqnhwo"
    return _output(jnp.einsum(spec, v, u), m, x.shape[1] - 2, x.shape[2] - 2), v


def supported(x_shape, kernel_shape) -> bool:
    """A 3x3 kernel and an input of at least 3x3."""
    return tuple(kernel_shape[:2]) == (3, 3) and min(x_shape[1:3]) >= 3


def _check(x, kernel):
    if not supported(x.shape, kernel.shape):
        raise ValueError(f"winograd.conv3x3 needs a 3x3 kernel and an input of at least 3x3, "
                         f"got x {x.shape} and kernel {kernel.shape}.")


@jax.custom_vjp
def conv3x3(x: Array, kernel: Array) -> Array:
    """VALID 3x3 stride-1 convolution (NHWC, HWIO)."""
    return _conv3x3_fwd(x, kernel)[0]


def _conv3x3_fwd(x, kernel):
    _check(x, kernel)
    m = _tile_size(x.shape[1] - 2, x.shape[2] - 2)
    y, v = _correlate(x, _kernel_tiles(kernel, m), m)
    return y, (kernel, v)  # keeping V costs memory, recomputing it ~3% of the CycleGAN step


def _conv3x3_bwd(residuals, dy):
    kernel, v = residuals
    n, ho, wo, c_out = dy.shape
    m = v.shape[0] - 2
    # dx: dy padded by 2, correlated with the rotated kernel, contracted over c_out.
    m_dx = _tile_size(ho + 2, wo + 2)
    dy_padded = jnp.pad(dy, ((0, 0), (2, 2), (2, 2), (0, 0)))
    dx = _correlate(dy_padded, _kernel_tiles(kernel, m_dx, flip=True), m_dx, transposed=True)[0]
    # dk: dU = sum over tiles of V^T (A dY A^T), V saved by the forward pass; dk = G^T dU G.
    t, s = v.shape[3], v.shape[4]
    dy = jnp.pad(dy, ((0, 0), (0, m * t - ho), (0, m * s - wo), (0, 0)))
    blocks = dy.reshape(n, t, m, s, m, c_out)
    a = np.asarray(_TRANSFORMS[m][2]).T  # A: [m + 2, m]
    w = _stack(_both_axes(a, [[blocks[:, :, i, :, j] for j in range(m)] for i in range(m)]))
    du = jnp.einsum("pqnhwc,pqnhwo->pqco", v, w)
    dk = (_kron_g(m).T @ du.reshape((m + 2) ** 2, -1)).reshape(kernel.shape)
    return dx, dk


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)
