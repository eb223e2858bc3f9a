"""3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016).

Each 2x2 block of outputs is computed from the 4x4 input tile d that covers it:

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A,

where (.) multiplies elementwise over the 4x4 tile positions and sums over input channels, so
the inner products become 16 independent matrix products [tiles, c_in] @ [c_in, c_out] with
2.25x fewer multiplications than the direct form; the transforms

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

are additions that XLA fuses into cheap elementwise loops. Backward (custom VJP):

* input gradient: the full correlation of dy with the flipped, in/out-swapped kernel, i.e. the
  same Winograd convolution applied to dy padded by 2;
* kernel gradient: dU[p, q] = sum_tiles V[p, q]^T (A dY A^T)[p, q] (16 matrix products, with
  V = B^T d B the input tiles), then dk = G^T dU G.

On XLA's CPU backend (2 cores), a 256 -> 256 layer at 12x12, batch 8 takes ~2 ms forward and
~5 ms backward this way, against ~7 and ~11 ms for XLA's convolution (benchmarks/conv_forms.py).
Values match the direct convolution to float rounding (relative 1e-6; tests/test_layers.py).
The backward rule is plain JAX, so the op is twice differentiable (gradient penalties).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _bt(d):  # B^T d: 4 -> 4
    return [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]


def _at(m):  # A^T m: 4 -> 2
    return [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]


def _a(y):  # A y: 2 -> 4 (the transpose of A^T)
    return [y[0], y[0] + y[1], y[0] - y[1], -y[1]]


def _g(g):  # G g: 3 -> 4
    return [g[0], (g[0] + g[1] + g[2]) * 0.5, (g[0] - g[1] + g[2]) * 0.5, g[2]]


def _gt(u):  # G^T u: 4 -> 3
    return [u[0] + (u[1] + u[2]) * 0.5, (u[1] - u[2]) * 0.5, (u[1] + u[2]) * 0.5 + u[3]]


def _both_axes(transform, t):
    """Applies a 1-D transform along both axes of a nested list t[a][b] -> out[p][q], stacked."""
    cols = [transform([row[b] for row in t]) for b in range(len(t[0]))]  # cols[b][p]
    out = [transform([col[p] for col in cols]) for p in range(len(cols[0]))]  # out[p][q]
    return jnp.stack([jnp.stack(row) for row in out])


def _input_tiles(x: Array) -> Array:
    """V = B^T d B for every 4x4 tile d at stride 2: [N, 2T + 2, 2S + 2, C] -> [4, 4, N, T, S, C]."""
    t, s = (x.shape[1] - 2) // 2, (x.shape[2] - 2) // 2
    d = [[x[:, a : a + 2 * t : 2, b : b + 2 * s : 2] for b in range(4)] for a in range(4)]
    return _both_axes(_bt, d)


def _kernel_tiles(kernel: Array) -> Array:
    """U = G g G^T: [3, 3, C, O] -> [4, 4, C, O]."""
    return _both_axes(_g, [[kernel[i, j] for j in range(3)] for i in range(3)])


def _forward(x: Array, kernel: Array) -> Array:
    n, hp, wp, _ = x.shape
    m = jnp.einsum("pqnhwc,pqco->pqnhwo", _input_tiles(x), _kernel_tiles(kernel))
    y = _both_axes(_at, [[m[p, q] for q in range(4)] for p in range(4)])  # [i, j, N, T, S, O]
    return y.transpose(2, 3, 0, 4, 1, 5).reshape(n, hp - 2, wp - 2, kernel.shape[-1])


def supported(x_shape, kernel_shape) -> bool:
    """F(2x2, 3x3) tiles the output in 2x2 blocks: a 3x3 kernel and even output sides."""
    return tuple(kernel_shape[:2]) == (3, 3) and x_shape[1] % 2 == 0 and x_shape[2] % 2 == 0


@jax.custom_vjp
def conv3x3(x: Array, kernel: Array) -> Array:
    """VALID 3x3 stride-1 convolution (NHWC, HWIO) by F(2x2, 3x3); x's sides must be even
    (`supported`), i.e. the output's."""
    if not supported(x.shape, kernel.shape):
        raise ValueError(f"winograd.conv3x3 needs a 3x3 kernel and even input sides, got x "
                         f"{x.shape} and kernel {kernel.shape}.")
    return _forward(x, kernel)


def _conv3x3_fwd(x, kernel):
    return conv3x3(x, kernel), (x, kernel)


def _conv3x3_bwd(residuals, dy):
    x, kernel = residuals
    n, ho, wo, c_out = dy.shape
    dx = conv3x3(jnp.pad(dy, ((0, 0), (2, 2), (2, 2), (0, 0))), kernel[::-1, ::-1].transpose(0, 1, 3, 2))
    blocks = dy.reshape(n, ho // 2, 2, wo // 2, 2, c_out)
    w = _both_axes(_a, [[blocks[:, :, i, :, j] for j in range(2)] for i in range(2)])  # A dY A^T
    v = _input_tiles(x)
    # Contract over (n, tile rows, tile cols); channels-first V makes it a plain batched GEMM.
    du = jnp.einsum("pqcnhw,pqnhwo->pqco", v.transpose(0, 1, 5, 2, 3, 4), w)
    dk = _both_axes(_gt, [[du[p, q] for q in range(4)] for p in range(4)])
    return dx, dk


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)
