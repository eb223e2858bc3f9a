"""ACGAN and WACGAN (Odena et al. 2017; report 002 in docs/references.md).

G is told a class label (one-hot) or an attribute vector (multi-hot, CelebA's 40); D is not
told it but predicts it with an auxiliary classifier head `aux` beside its adversarial score.
On the two-player step (`gans/adversarial.py`) the class terms are auxiliary terms:

    L_D = adv_D + w * [ C(aux(x), y) + C(aux(G(z, y')), y') ]
    L_G = adv_G + w * C(aux(G(z, y')), y')

with C the softmax cross-entropy for one label per image, or the mean sigmoid BCE over the
attributes for multi-label data (`losses.categorical_cross_entropy` /
`multilabel_cross_entropy`, both from logits: no softmax before the loss, the double-softmax
slip of popular re-implementations). Which one is chosen by the data (`acgan.aux_head=auto`:
attributes when the dataset has them, else labels); forcing one the data cannot give is a
config error. D's accuracy on the real batch is logged (`d_aux_accuracy`): with multi-label
data the mean over attributes.

WACGAN is the same algorithm with `gan.loss=wasserstein` and weight clipping
(`gan.weight_clip=0.01`, as report 002) or the gradient penalty (`gan.gp_weight`), critic
steps with `gan.d_steps`: the step's machinery, not a copy of it.

The architecture defaults to report 002's ResNet (`model.arch=resnet`, `models/resnet.py`).
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from ganjax import gans, losses
from ganjax.gans.adversarial import TwoPlayerGAN
from ganjax.latent import LatentSpec

_AUX_HEADS = ("auto", "softmax", "sigmoid")


def choose_aux_head(requested: str, data_info) -> str:
    """`softmax` (one label per image) or `sigmoid` (multi-label attributes) for this data.

    `auto` picks attributes when the dataset has them, else labels. Raises ValueError naming
    the fix when the data cannot give what is requested.
    """
    if requested not in _AUX_HEADS:
        raise ValueError(f"config.acgan.aux_head must be one of {list(_AUX_HEADS)}, got {requested!r}.")
    has_labels, has_attributes = bool(data_info.num_classes), bool(data_info.attribute_names)
    if requested == "auto":
        if not (has_labels or has_attributes):
            raise ValueError(
                f"ACGAN needs class labels or attributes, and dataset {data_info.name!r} has neither."
            )
        return "sigmoid" if has_attributes else "softmax"
    if requested == "softmax" and not has_labels:
        raise ValueError(
            f"config.acgan.aux_head=softmax needs one class label per image, but dataset "
            f"{data_info.name!r} is multi-label ({len(data_info.attribute_names)} attributes): "
            "use aux_head=sigmoid (or auto)."
        )
    if requested == "sigmoid" and not has_attributes:
        raise ValueError(
            f"config.acgan.aux_head=sigmoid needs attribute vectors, and dataset {data_info.name!r} "
            "has only class labels: use aux_head=softmax (or auto)."
        )
    return requested


@gans.register("acgan")
class ACGAN(TwoPlayerGAN):
    """See the module docstring."""

    default_arch = "resnet"
    config_section = "acgan"
    DEFAULTS = {"gan.loss": "non_saturating"}

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        c = ml_collections.ConfigDict()
        c.aux_head = "auto"  # auto (attributes if the data has them, else labels) | softmax | sigmoid
        c.aux_weight = 1.0  # weight of the class terms in L_D and L_G
        return c

    def __init__(self, config, data_info):
        self.aux_head = choose_aux_head(config.acgan.aux_head, data_info)
        if config.acgan.aux_weight < 0:
            raise ValueError("config.acgan.aux_weight must be >= 0.")
        super().__init__(config, data_info)

    def make_latent(self) -> LatentSpec:
        multi_label = self.aux_head == "sigmoid"
        return LatentSpec(
            noise=self.config.model.z_dim,
            num_classes=0 if multi_label else self.info.num_classes,
            num_attributes=len(self.info.attribute_names) if multi_label else 0,
        )

    def _targets(self, batch_or_parts: dict):
        return batch_or_parts["attributes" if self.aux_head == "sigmoid" else "label"]

    def d_heads(self):
        size = self.latent.num_attributes or self.latent.num_classes
        return (("aux", size),)

    def d_conditional(self) -> bool:
        return False

    def class_loss(self, logits, targets):
        """C(logits, y): softmax CE for labels, mean sigmoid BCE for attribute vectors."""
        if self.aux_head == "sigmoid":
            return losses.multilabel_cross_entropy(logits, targets)
        return losses.categorical_cross_entropy(logits, targets)

    def class_accuracy(self, logits, targets):
        if self.aux_head == "sigmoid":
            return jnp.mean((logits > 0) == (targets > 0.5))
        return jnp.mean(jnp.argmax(logits, -1) == targets)

    def d_aux_terms(self, real, fake, batch, parts):
        w, y_real, y_fake = self.config.acgan.aux_weight, self._targets(batch), self._targets(parts)
        return {
            "aux_real": (w, self.class_loss(real["aux"], y_real)),
            "aux_fake": (w, self.class_loss(fake["aux"], y_fake)),
            "aux_accuracy": (None, self.class_accuracy(real["aux"], y_real)),
        }

    def g_aux_terms(self, fake, parts):
        y = self._targets(parts)
        return {
            "aux": (self.config.acgan.aux_weight, self.class_loss(fake["aux"], y)),
            "aux_accuracy": (None, self.class_accuracy(fake["aux"], y)),
        }
