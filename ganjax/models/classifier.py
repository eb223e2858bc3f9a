"""Small image classifiers: the augmentation benchmark's models and a feature space for metrics.

Report 001 benchmarks FER2013 emotion classifiers trained on real vs real + synthetic data: a
simple CNN (about 65% test accuracy) and a VGG-style one (about 73%). Both are `SimpleCNN`:
`depth` stages of `convs_per_stage` 3x3 convolutions (+ optional BatchNorm) and ReLU,
followed by 2x2 max pooling, the channel count doubling per stage from `width`; then a
flatten, a dense `hidden` layer (the penultimate features) with dropout, and the logits.
`VGGStyleCNN` is the same module with VGG's defaults (two convolutions per stage, BatchNorm,
wider). Works for 28x28 MNIST, 48x48 FER (gray) and RGB images alike.

    model = SimpleCNN(num_classes=7)
    variables = model.init(key, images, train=False)
    logits = model.apply(variables, images)                          # [N, num_classes]
    features = model.apply(variables, images, method=SimpleCNN.features)   # [N, hidden]
"""

from __future__ import annotations

import flax.linen as nn
import jax


def depth_for(size: int) -> int:
    """Conv stages for `size`-pixel images: as many as keep the last feature map >= 7 px
    (28 -> 2, 48 -> 2, 64 -> 3), 1 to 3."""
    depth = 1
    while depth < 3 and size >> (depth + 1) >= 7:
        depth += 1
    return depth


class SimpleCNN(nn.Module):
    """Conv stages -> flatten -> dense `hidden` (penultimate) -> dense `num_classes` logits.

    Attributes:
        num_classes: number of output logits.
        width: channels of the first stage; stage i has width * 2**i.
        depth: number of conv stages, each ending in a 2x2 max pool (the input must be at
            least 2**depth pixels high and wide).
        convs_per_stage: 3x3 convolutions per stage.
        hidden: size of the penultimate dense layer (the feature dimension).
        batch_norm: BatchNorm after each convolution (batch statistics in `batch_stats`).
        dropout_rate: dropout after each stage and after the hidden layer (train only;
            needs a 'dropout' rng).
    """
    num_classes: int
    width: int = 32
    depth: int = 3
    convs_per_stage: int = 1
    hidden: int = 128
    batch_norm: bool = False
    dropout_rate: float = 0.25

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False,
                 return_features: bool = False) -> jax.Array:
        """Images [N, H, W, C] in [-1, 1] -> logits [N, num_classes], or the penultimate
        features [N, hidden] with ``return_features=True``."""
        if x.ndim != 4:
            raise ValueError(f"SimpleCNN needs images [N, H, W, C], got shape {x.shape}.")
        if min(x.shape[1:3]) < 2**self.depth:
            raise ValueError(f"SimpleCNN: {x.shape[1]}x{x.shape[2]} images are too small for "
                             f"depth={self.depth} (each stage halves the size); use depth <= "
                             f"{min(x.shape[1:3]).bit_length() - 1}.")
        for stage in range(self.depth):
            for _ in range(self.convs_per_stage):
                x = nn.Conv(self.width * 2**stage, (3, 3), padding="SAME",
                            use_bias=not self.batch_norm)(x)
                if self.batch_norm:
                    x = nn.BatchNorm(use_running_average=not train)(x)
                x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), (2, 2))
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
        if return_features:
            return x
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes, name="logits")(x)

    def features(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Penultimate-layer features [N, hidden] (e.g. for FID or kNN in feature space)."""
        return self(x, train=train, return_features=True)


class VGGStyleCNN(SimpleCNN):
    """VGG-style variant (report 001's stronger FER classifier): two 3x3 convolutions per
    stage with BatchNorm, 64-128-256 channels, a 256-unit hidden layer."""
    width: int = 64
    convs_per_stage: int = 2
    hidden: int = 256
    batch_norm: bool = True
