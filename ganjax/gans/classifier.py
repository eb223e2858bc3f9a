"""An image classifier as an algorithm: the augmentation benchmark's model, trained by the loop.

Report 001 measures whether synthetic images help a classifier (docs/references.md). The
classifier is the report's simple CNN or its VGG-style one (`models/classifier.py`), trained
with softmax cross-entropy on `{'image', 'label'}` batches from the project's input pipeline, so
it gets what every algorithm gets: checkpoints, resume, the NaN stop, metrics, and the data
options of `config.data` (a low-data subset `per_class`, classical augmentation `shift` /
`rotate` / `flip` / `jitter`, synthetic examples `synthetic` at `synthetic_fraction` of each
batch). `job=augment` (`ganjax/augment.py`) trains many of them.

    python launch.py --config=configs/augment_mnist.py --config.job=train \
        --config.data.per_class=10 --workdir=/tmp/classifier

The step: loss = mean_i CE(softmax(f(x_i)), y_i) over the batch, dropout on, BatchNorm (VGG)
in training mode; Adam with `classifier.learning_rate` and `optim.schedule` (cosine by default)
over `train.num_steps`. `predict` reads held-out images (scored by
`metrics.accuracy.per_class_accuracy`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

from ganjax import gans
from ganjax.gans.base import Algorithm
from ganjax.models.classifier import SimpleCNN, VGGStyleCNN, depth_for
from ganjax.optim import make_optimizer
from ganjax.train_state import NetState, RunState, init_step_and_rng

MODELS = {"simple": SimpleCNN, "vgg": VGGStyleCNN}


@struct.dataclass
class ClassifierState(RunState):
    classifier: NetState


@gans.register("classifier")
class Classifier(Algorithm):
    """See the module docstring."""

    config_section = "classifier"
    DEFAULTS = {"optim.schedule": "cosine", "optim.b1": 0.9}
    TINY = {"classifier.hidden": 16, "classifier.width": 8}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.model = "simple"  # simple (report 001's simple CNN) | vgg (its VGG-style CNN)
        c.learning_rate = 1e-3  # Adam; decayed by optim.schedule over train.num_steps
        c.width = 0  # channels of the first stage; 0 = the model's default (simple 32, vgg 64)
        c.hidden = 0  # penultimate dense units; 0 = the model's default (simple 128, vgg 256)
        c.dropout = 0.25
        return c

    def __init__(self, config, data_info):
        super().__init__(config, data_info)
        cc = config.classifier
        if cc.model not in MODELS:
            raise ValueError(f"unknown config.classifier.model {cc.model!r}; choose one of {sorted(MODELS)}.")
        if data_info.num_classes < 2:
            raise ValueError(
                f"gan.name=classifier needs class labels (at least 2 classes); dataset "
                f"{data_info.name!r} here has {data_info.num_classes}."
            )
        if cc.learning_rate <= 0:
            raise ValueError(f"config.classifier.learning_rate must be > 0, got {cc.learning_rate}.")
        kwargs = {"num_classes": data_info.num_classes, "dropout_rate": cc.dropout,
                  "depth": depth_for(min(data_info.image_shape[:2]))}
        kwargs.update({k: cc[k] for k in ("width", "hidden") if cc[k]})
        self.model = MODELS[cc.model](**kwargs)

    def init_state(self, rng: jax.Array) -> ClassifierState:
        step, base = init_step_and_rng(self.config.seed)
        x = jnp.zeros((1, *self.info.image_shape), jnp.float32)
        variables = self.model.init(rng, x, train=False)
        tx = make_optimizer(self.config.optim, self.config.classifier.learning_rate, self.config.train.num_steps)
        return ClassifierState(step=step, rng=base, classifier=NetState.create(self.model.apply, variables, tx))

    def train_step(self, state: ClassifierState, batch: dict) -> tuple[ClassifierState, dict]:
        x, y = batch["image"][0], batch["label"][0]
        net = state.classifier

        def loss_fn(params):
            logits, stats = net.apply_train(params, x, rngs={"dropout": state.step_key("dropout")})
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, (stats, logits)

        (loss, (stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
        accuracy = jnp.mean(logits.argmax(-1) == y)
        new = state.replace(step=state.step + 1, classifier=net.apply_gradients(grads, stats))
        return new, {"loss": loss, "accuracy": accuracy}

    @functools.cached_property
    def _logits(self):
        return jax.jit(lambda state, x: state.classifier.apply_fn(state.classifier.variables, x))

    def predict(self, state: ClassifierState, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Images in [-1, 1] [N, H, W, C] -> predicted classes int32 [N] (eval mode)."""
        out = []
        for start in range(0, len(images), batch_size):
            chunk = np.asarray(images[start:start + batch_size], np.float32)
            out.append(np.asarray(self._logits(state, chunk)).argmax(-1))
        return np.concatenate(out).astype(np.int32) if out else np.zeros(0, np.int32)
