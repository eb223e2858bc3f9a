"""Types shared by the input pipeline, the dataset builders and the stats job."""

from __future__ import annotations

import dataclasses


from ganjax.errors import DatasetError  # noqa: F401  (re-exported: the data modules raise it)


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What the models need to know about a dataset (after preprocessing and class filtering)."""

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int  # 0 when the examples carry no class label
    class_names: tuple[str, ...]
    num_train_examples: int  # in the loaded split, all processes (after class filtering)
    # celeb_a: the 40 attribute names, in the order of the batches' 'attributes' vector.
    attribute_names: tuple[str, ...] = ()
    # examples of each class (all processes, in the loaded split); () when not counted.
    class_counts: tuple[int, ...] = ()
