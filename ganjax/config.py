"""The core config schema, and the assembly of the sections that algorithms and jobs own.

Experiment files in `configs/` start from `base_config(algorithm)` and change what they need; any
key can be overridden on the command line (`--config.optim.g_lr=1e-4`). ml_collections rejects
unknown keys and wrong types when the flag is parsed; `validate` checks values before anything
runs. The sections:

* core, here: `name`, `job`, `seed`, `gan` (the algorithm's name and the adversarial knobs every
  GAN shares), `optim`, `data`, `train`, `mesh`, `distributed`;
* `model`: the architecture named by `model.arch` (its module in `ganjax/models/` gives the
  keys; `model.conv_impl` is always there);
* the algorithm's own section, e.g. `cyclegan` (`Algorithm.default_config`);
* `evals.<name>`: evaluators run during training (`ganjax/evaluators/`, each entry made with
  `evaluators.entry(type, every=..., ...)`);
* `jobs.<job>`: the settings of the jobs that read a trained run (`ganjax/jobs.py`).

`apply_variant(c, "tiny")` applies the core's tiny values, then the architecture's, the
algorithm's and each evaluator's (`TINY` beside the code that owns the keys).
"""

from __future__ import annotations

import ml_collections

from ganjax.errors import ConfigError  # noqa: F401  (re-exported: configs raise it)


def _core() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "run"  # the default workdir is workdirs/<name>
    c.job = "train"  # what launch.py runs (ganjax/jobs.py: train | dataset_stats | translate | synthesize | fid_study | augment | train_predictor | recover | edit)
    c.seed = 0  # all randomness (init, data order, noise) derives from it

    c.gan = ml_collections.ConfigDict()
    c.gan.name = "dcgan"  # algorithm in ganjax/gans/ (set by base_config)
    c.gan.loss = "non_saturating"  # minimax | non_saturating | least_squares | wasserstein | hinge
    c.gan.conditional = False  # feed class labels to G and D (cGAN, report 004)
    c.gan.real_target = 1.0  # < 1: one-sided label smoothing (soft real labels)
    c.gan.d_steps = 1  # D (critic) updates per train step, each on its own real batch
    c.gan.g_steps = 1  # G updates per train step
    c.gan.gp_weight = 0.0  # WGAN-GP gradient penalty weight (10 in Gulrajani et al.)
    c.gan.weight_clip = 0.0  # WGAN weight clipping c (0.01 in Arjovsky et al.); 0 = off
    c.gan.instance_noise = 0.0  # std of Gaussian noise on D inputs (report 000: 1/15, 1/20)
    c.gan.instance_noise_anneal_steps = 0  # linear decay of that std to 0; 0 = constant
    c.gan.diff_augment = ""  # DiffAugment on every D input, real and fake: "translation,cutout[,color]" (small data; Zhao et al. 2020); "" = off

    c.optim = ml_collections.ConfigDict()
    c.optim.optimizer = "adam"  # adam | rmsprop
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999
    c.optim.schedule = "constant"  # constant | linear_decay | cosine
    c.optim.decay_start = 0.5  # linear_decay: fraction of the steps before the decay starts
    c.optim.grad_clip_norm = 0.0  # rescale each optimizer's gradients to global L2 norm <= this (optax.clip_by_global_norm); 0 = off

    c.data = ml_collections.ConfigDict()
    c.data.name = "mnist_offline"  # mnist_offline | mnist | fer2013 | celeb_a | image_folder (docs/datasets.md)
    c.data.split = "train"
    c.data.data_dir = ""  # tfds data dir; "" = tfds default (~/tensorflow_datasets)
    c.data.download = False  # let tfds download a dataset that is not prepared
    c.data.image_size = 0  # resize to this square size; 0 = keep the source size
    c.data.channels = 0  # 1 or 3 to convert; 0 = keep
    c.data.center_crop = 0  # centre crop to this square size before resizing; 0 = none (non-square: largest centred square)
    c.data.batch_size = 64  # global batch (all devices, all processes)
    c.data.shuffle_buffer = 10_000
    c.data.cache = True  # cache decoded uint8 images in memory
    c.data.manual_dir = ""  # tfds manual_dir (fer2013.csv, CelebA files); "" = <data_dir>/downloads/manual
    c.data.skip_bad_rows = False  # fer2013: skip malformed CSV rows / unreadable images (count reported) instead of failing
    c.data.folder = ""  # image_folder: root holding <split>/<class>/*.png|jpg
    c.data.label_attribute = ""  # celeb_a: use this attribute (e.g. "Smiling") as a 2-class label (not_X, X)
    c.data.classes = ""  # keep/relabel classes in this order, e.g. "Neutral,Happy" (names or indices; "a+b" merges); "" = all
    c.data.balance = False  # class-balanced sampling: every class equally likely at each position
    c.data.flip = False  # augmentation: random horizontal flip
    c.data.jitter = 0  # augmentation: resize up by this many pixels, random crop back; 0 = off
    c.data.rotate = 0.0  # augmentation: random rotation within +- this many degrees; 0 = off
    c.data.shift = 0  # augmentation: random shift by up to this many pixels each way (mirrored borders); 0 = off
    c.data.per_class = 0  # low-data subset: keep this many examples per class of data.split (the test split stays whole); 0 = all
    c.data.subset_seed = 0  # which examples per_class keeps (a prefix of the larger subsets: 5 of 10 of 20)
    c.data.synthetic = ""  # comma-separated tfds dataset dirs (job=synthesize / translate outputs) mixed into training
    c.data.synthetic_fraction = 0.0  # fraction of each batch drawn from data.synthetic (1 = synthetic only)
    c.data.domain_a = ""  # two-domain (CycleGAN) data: "[dataset:]classes" of domain A, e.g. "Neutral"
    c.data.domain_b = ""  # ... of domain B, e.g. "Happy", or "image_folder:" (all of another dataset)
    c.data.preview = 64  # dataset_stats: images per class in each preview grid PNG

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 1000
    c.train.log_every = 50  # scalars to console, TensorBoard and metrics.jsonl
    c.train.sample_every = 500  # sample grid PNG + TensorBoard image (and at the end)
    c.train.checkpoint_every = 500  # orbax checkpoint (and at the end, and on SIGTERM/SIGINT)
    c.train.keep_checkpoints = 3
    c.train.sample_cols = 8  # grid columns (rows: one per class, or sample_cols)
    c.train.best_metric = ""  # also keep the best checkpoint by this eval scalar, e.g. "fid" (an evals entry's key); "" = only the latest
    c.train.best_mode = "min"  # min (FID, distances) | max (accuracies)
    c.restore = "latest"  # checkpoint that jobs reading a trained run use: latest | best | a step number
    c.eval = ml_collections.ConfigDict()
    c.eval.inception_weights = ""  # FID-Inception weights (pytorch-fid .pth or converted .npz) for fid evaluators with features="inception"
    # The feature distances of ganjax/distances.py (predictor, latent recovery, editing):
    c.eval.vgg16_weights = ""  # distance "vgg": torchvision's vgg16-397923af.pth or its .npz (python -m ganjax.models.vgg SRC.pth DST.npz)
    c.eval.vgg16_layers = "conv4_3"  # comma-separated ReLU outputs compared, conv1_1 ... conv5_3 (conv4_3: report 000's "first 23 layers"; Image2StyleGAN: conv1_1,conv1_2,conv3_2,conv4_2)
    c.eval.vgg16_layer_weights = ""  # one weight per layer, comma-separated; "" = 1 each
    c.eval.vgg16_resize = 0  # resize images bilinearly to this square size first (e.g. 224); 0 = their own size
    c.eval.vgg16_pixel_weight = 0.0  # plus this weight times the pixel MSE (0 = features only)
    c.eval.judge_distance_steps = 1000  # distance "judge": training steps of its judge (cached in <workdir>/judges, shared with the evaluators' judge when they match)
    c.eval.judge_distance_pixel_weight = 0.0  # distance "judge": plus this weight times the pixel MSE

    c.evals = ml_collections.ConfigDict()  # name -> evaluators.entry(type, every=..., ...)

    c.mesh = ml_collections.ConfigDict()
    c.mesh.num_devices = 0  # 0 = all visible devices
    c.distributed = False  # jax.distributed.initialize() (or GANJAX_DISTRIBUTED=1)
    return c


def base_config(algorithm: str = "dcgan", arch: str | None = None) -> ml_collections.ConfigDict:
    """The core keys plus the sections `algorithm` (a registered `gan.name`) owns: its
    architecture's `model` keys (`arch`, default the algorithm's), its own section, and every
    job's `jobs.<job>` section."""
    from ganjax import gans, jobs, models

    c = _core()
    cls = gans.get(algorithm)
    c.gan.name = algorithm
    arch = arch or cls.default_arch
    if arch:
        c.model = models.get(arch).default_config()
    else:
        c.model = ml_collections.ConfigDict()
        c.model.conv_impl = "fast"  # fast (CPU-friendly equivalent forms) | native (XLA's ops)
    if cls.config_section:
        c[cls.config_section] = cls.default_config()
    update_flattened(c, cls.DEFAULTS)
    c.jobs = jobs.default_configs()
    return c


def validate(config: ml_collections.ConfigDict) -> None:
    """Value checks that types alone cannot express. Raises ConfigError."""

    def need(cond: bool, message: str) -> None:
        if not cond:
            raise ConfigError(message)

    t = config.train
    need(t.num_steps > 0, f"config.train.num_steps must be > 0, got {t.num_steps}.")
    for key in ("log_every", "sample_every", "checkpoint_every"):
        need(t[key] > 0, f"config.train.{key} must be > 0, got {t[key]}.")
    need(t.keep_checkpoints >= 1, "config.train.keep_checkpoints must be >= 1.")
    need(t.best_mode in ("min", "max"), f"config.train.best_mode must be 'min' or 'max', got {t.best_mode!r}.")
    evals = config.get("evals") or {}
    need(
        not t.best_metric or t.best_metric.split("/")[0] in evals,
        f"config.train.best_metric={t.best_metric!r} names no evaluator: it must be a scalar an "
        f"evals entry writes (its name, e.g. 'fid', or 'name/key'); the entries are {sorted(evals)}.",
    )
    from ganjax import runs

    runs.parse_restore(config.get("restore", "latest"))
    need(config.data.batch_size > 0, "config.data.batch_size must be > 0.")
    need(config.data.channels in (0, 1, 3), "config.data.channels must be 0, 1 or 3.")
    need(config.optim.g_lr > 0 and config.optim.d_lr > 0, "learning rates must be > 0.")
    need(
        config.optim.grad_clip_norm >= 0,
        f"config.optim.grad_clip_norm must be >= 0 (0 = off), got {config.optim.grad_clip_norm}.",
    )
    need(
        config.optim.optimizer in ("adam", "rmsprop"),
        f"unknown config.optim.optimizer {config.optim.optimizer!r}; use 'adam' or 'rmsprop'.",
    )
    need(
        config.optim.schedule in ("constant", "linear_decay", "cosine"),
        f"unknown config.optim.schedule {config.optim.schedule!r}; use 'constant', 'linear_decay' or 'cosine'.",
    )
    need(config.mesh.num_devices >= 0, "config.mesh.num_devices must be >= 0 (0 = all visible devices).")
    need(
        0.0 < config.gan.real_target <= 1.0,
        f"config.gan.real_target must be in (0, 1], got {config.gan.real_target}.",
    )
    need(config.gan.gp_weight >= 0 and config.gan.weight_clip >= 0, "gp_weight and weight_clip must be >= 0.")
    need(config.gan.instance_noise >= 0, "config.gan.instance_noise must be >= 0.")
    d = config.data
    need(d.name != "image_folder" or bool(d.folder), "config.data.name=image_folder needs --config.data.folder=/path/to/root (root/<split>/<class>/*.png).")
    need(d.jitter >= 0 and d.shift >= 0, f"config.data.jitter and shift must be >= 0 pixels, got {d.jitter}, {d.shift}.")
    need(d.per_class >= 0, f"config.data.per_class must be >= 0 (0 = all), got {d.per_class}.")
    need(
        0.0 <= d.synthetic_fraction <= 1.0,
        f"config.data.synthetic_fraction must be in [0, 1], got {d.synthetic_fraction}.",
    )
    need(
        d.synthetic_fraction == 0 or bool(d.synthetic.strip()),
        "config.data.synthetic_fraction > 0 needs --config.data.synthetic=DIR[,DIR]: tfds dataset "
        "dirs written by job=synthesize or job=translate (<output>/<name>/1.0.0).",
    )
    need(0.0 <= d.rotate <= 180.0, f"config.data.rotate must be in [0, 180] degrees, got {d.rotate}.")
    need(d.image_size >= 0 and d.center_crop >= 0, "config.data.image_size and center_crop must be >= 0.")
    need(d.preview >= 1, f"config.data.preview must be >= 1, got {d.preview}.")
    need(d.shuffle_buffer >= 1, f"config.data.shuffle_buffer must be >= 1, got {d.shuffle_buffer}.")
    need(
        bool(d.domain_a.strip()) == bool(d.domain_b.strip()),
        "set both config.data.domain_a and config.data.domain_b (two-domain data) or neither.",
    )
    need(
        not d.balance or d.name != "celeb_a" or bool(d.label_attribute),
        "config.data.balance on celeb_a needs classes: set --config.data.label_attribute (e.g. Smiling).",
    )
    need(
        not d.label_attribute or d.name == "celeb_a" or "celeb_a:" in d.domain_a + d.domain_b,
        "config.data.label_attribute applies to celeb_a only (data.name or a 'celeb_a:' domain).",
    )
    _validate_sections(config)


def _validate_sections(config: ml_collections.ConfigDict) -> None:
    """The algorithm, its sections, the architecture and the evaluator entries exist and fit."""
    from ganjax import evaluators, gans, jobs, models

    cls = gans.get(config.gan.name)  # ConfigError naming the choices
    hint = f"start the config from base_config({config.gan.name!r}) (ganjax/config.py)"
    if cls.config_section and cls.config_section not in config:
        raise ConfigError(f"config.gan.name={config.gan.name!r} needs the config.{cls.config_section} section: {hint}.")
    if "arch" in config.model:
        expected = models.get(config.model.arch).default_config()
        missing = sorted(set(expected) - set(config.model))
        if missing:
            raise ConfigError(
                f"config.model.arch={config.model.arch!r} needs the keys {missing}: start the config "
                f"from base_config({config.gan.name!r}, arch={config.model.arch!r}) (ganjax/config.py)."
            )
    jobs.get(config.job)
    evaluators.check_config(config.get("evals") or {})


TINY = {
    "data.batch_size": 16,
    "data.shuffle_buffer": 256,
    "train.num_steps": 6,
    "train.log_every": 2,
    "train.sample_every": 3,
    "train.checkpoint_every": 3,
    "train.sample_cols": 4,
    "eval.judge_distance_steps": 30,
}


def update_flattened(c: ml_collections.ConfigDict, values: dict) -> None:
    """Sets `{"a.b": v}` keys that exist in `c` (a TINY dict may name keys of absent sections)."""
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = c
        for p in parents:
            node = node.get(p) if node is not None else None
        if node is not None and leaf in node:
            node[leaf] = value


def apply_variant(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
    """Applies a named variant given as `--config=configs/X.py:VARIANT`.

    `tiny`: seconds on a CPU (small networks and batches, a handful of steps) for tests and
    smoke runs; its workdir name gets a `_tiny` suffix. The core's values (`TINY` here), then
    those of the architecture, the algorithm and each evaluator entry.
    """
    from ganjax import evaluators, gans, models

    if not arg:
        return c
    if arg != "tiny":
        raise ConfigError(f"unknown config variant {arg!r}; the configs know 'tiny'.")
    c.name += "_tiny"
    update_flattened(c, TINY)
    if "arch" in c.model:
        update_flattened(c, models.get(c.model.arch).TINY)
    update_flattened(c, gans.get(c.gan.name).TINY)
    for entry in (c.get("evals") or {}).values():
        update_flattened(entry, evaluators.get(entry.type).TINY)
    return c
