"""`fer2013`: the Kaggle FER2013 facial-expression faces as a real tfds dataset (manual download).

FER2013 is not in the tfds catalogue and cannot be downloaded without a Kaggle account, so this
builder reads what the user downloaded from tfds' `manual_dir` and downloads nothing:

* `fer2013.csv` (or `fer2013/fer2013.csv`, as the Kaggle archive `fer2013.tar.gz` unpacks):
  columns `emotion,pixels,Usage`, 35,887 rows; `pixels` = 2,304 space-separated integers 0-255
  of a 48x48 gray face; `emotion` 0-6; `Usage` Training / PublicTest / PrivateTest, which become
  the splits `train` (28,709), `public_test` (3,589) and `private_test` (3,589);
* or the common folder layout `train/<emotion>/*.png|jpg` and `test/<emotion>/*.png|jpg`
  (emotion folder names are matched case-insensitively), which become the splits `train` and
  `test`.

    builder = tfds.builder("fer2013", data_dir=..., skip_bad_rows=False)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="/path/to/manual"))

Every row is checked before anything is written: a row with the wrong pixel count, a pixel that
is not an integer 0-255, a label outside 0-6 or an unknown Usage raises `DatasetError` naming the
line and the problem. With `skip_bad_rows=True` such rows are skipped instead; their number is
logged and kept in `info.metadata["skipped_rows"]`. The CSV may start with a UTF-8 byte-order
mark (as Windows tools write it). A broken image file of the folder layout is an error naming it
(or, with `skip_bad_rows=True`, skipped like a malformed row).

`info.metadata["source_digest"]` records which source the dataset was prepared from
(`source_digest`); `sources` prepares it again when the manual dir holds another or a changed
source (`source_change`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from ganjax.data import image_files
from ganjax.data.core import DatasetError

EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
IMAGE_SIZE = 48
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "public_test", "PrivateTest": "private_test"}
CSV_CANDIDATES = ("fer2013.csv", os.path.join("fer2013", "fer2013.csv"))
FOLDER_SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# "utf-8-sig" reads UTF-8 with or without the byte-order mark (EF BB BF) that Windows tools
# write before the header.
CSV_ENCODING = "utf-8-sig"
HASH_BLOCK = 1 << 20
KAGGLE_URL = (
    "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-"
    "recognition-challenge/data"
)
MANUAL_INSTRUCTIONS = f"""\
Download `fer2013.tar.gz` from {KAGGLE_URL} (a Kaggle account is needed), unpack it and put
`fer2013.csv` into the manual dir (or point --config.data.manual_dir at the folder holding it).
The folder layout `train/<emotion>/*.png` + `test/<emotion>/*.png` (e.g. Kaggle's
msambare/fer2013) is accepted too.
"""


class RowError(ValueError):
    """One malformed CSV row (message without the location)."""


def locate(manual_dir: str) -> tuple[str, str]:
    """('csv', path) or ('folders', root) for the FER2013 files in `manual_dir`.

    Raises DatasetError naming the expected paths and what to download.
    """
    manual_dir = os.path.expanduser(manual_dir)
    for rel in CSV_CANDIDATES:
        path = os.path.join(manual_dir, rel)
        if os.path.isfile(path):
            return "csv", path
    if os.path.isdir(os.path.join(manual_dir, "train")):
        return "folders", manual_dir
    raise DatasetError(
        f"FER2013 not found: expected {os.path.join(manual_dir, 'fer2013.csv')} (or the folders "
        f"{os.path.join(manual_dir, 'train')}/<emotion>/*.png and .../test/<emotion>/*.png). "
        + MANUAL_INSTRUCTIONS.replace("\n", " ")
        + "See docs/datasets.md."
    )


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def parse_row(row: list[str], columns: dict[str, int]) -> tuple[int, np.ndarray, str]:
    """(label, pixels uint8 [48, 48, 1], split) of one CSV row; RowError says what is wrong."""
    if len(row) < len(columns):
        raise RowError(f"has {len(row)} fields, expected {len(columns)} (emotion,pixels,Usage)")
    emotion = row[columns["emotion"]].strip()
    try:
        label = int(emotion)
    except ValueError:
        raise RowError(f"emotion {emotion!r} is not an integer 0-6") from None
    if not 0 <= label < len(EMOTIONS):
        raise RowError(f"emotion {label} is outside 0-6 ({', '.join(EMOTIONS)})")
    usage = row[columns["usage"]].strip()
    if usage not in USAGE_TO_SPLIT:
        raise RowError(f"Usage {usage!r} is not one of {', '.join(USAGE_TO_SPLIT)}")
    values = row[columns["pixels"]].split()
    if len(values) != NUM_PIXELS:
        raise RowError(
            f"pixels has {len(values)} values, expected {NUM_PIXELS} (48x48)"
        )
    try:
        pixels = np.array(values, dtype=np.int64)
    except ValueError:
        bad = next((i for i, v in enumerate(values) if not _is_int(v)), 0)
        raise RowError(
            f"pixel {bad} is {values[bad]!r}, not an integer 0-255"
        ) from None
    if pixels.min() < 0 or pixels.max() > 255:
        bad = int(np.flatnonzero((pixels < 0) | (pixels > 255))[0])
        raise RowError(f"pixel {bad} is {pixels[bad]}, outside 0-255")
    return label, pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE, 1), USAGE_TO_SPLIT[usage]


class _BadInputs:
    """Raises on the first bad row or image, or (skip=True) counts them and keeps the first
    few messages for the report."""

    def __init__(self, skip: bool):
        self.skip, self.skipped, self.problems = skip, 0, []

    def report(self, message: str, fix: str) -> None:
        if not self.skip:
            raise DatasetError(f"{message}. {fix}") from None
        self.skipped += 1
        if len(self.problems) < 5:
            self.problems.append(message)


def read_csv(path: str, skip_bad_rows: bool = False):
    """All rows of a Kaggle-format CSV: ({split: (images, labels, keys)}, skipped, first_problem).

    Line numbers count the header as line 1, so the first face is on line 2.
    """
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    per_split: dict[str, tuple[list, list, list]] = {}
    bad = _BadInputs(skip_bad_rows)
    with open(path, newline="", encoding=CSV_ENCODING) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise DatasetError(f"{path} is empty; expected the Kaggle fer2013.csv. {MANUAL_INSTRUCTIONS}")
        names = {h.strip().lower(): i for i, h in enumerate(header)}
        if not {"emotion", "pixels", "usage"} <= set(names):
            raise DatasetError(
                f"{path} line 1: the header is {','.join(header)!r}; expected the Kaggle columns "
                "'emotion,pixels,Usage'. Is this the FER2013 CSV?"
            )
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            try:
                label, image, split = parse_row(row, names)
            except RowError as e:
                bad.report(
                    f"{path} line {line} (data row {line - 1}): {e}",
                    "Fix or delete that row, or set --config.data.skip_bad_rows=True to skip "
                    "malformed rows (the number skipped is reported).",
                )
                continue
            images, labels, keys = per_split.setdefault(split, ([], [], []))
            images.append(image)
            labels.append(label)
            keys.append(line)
    return per_split, bad.skipped, bad.problems


def _folder_images(root: str) -> list[tuple[str, str, str]]:
    """(split, class folder, file name) of every image of the folder layout, sorted; each class
    folder also comes once with the name "" before its files, so empty folders are seen too."""
    found = []
    for split in FOLDER_SPLITS:
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            continue
        for folder in sorted(os.listdir(split_dir)):
            class_dir = os.path.join(split_dir, folder)
            if not os.path.isdir(class_dir):
                continue
            found.append((split, folder, ""))  # an empty folder still names a class
            found.extend(
                (split, folder, name)
                for name in sorted(os.listdir(class_dir))
                if name.lower().endswith(IMAGE_EXTENSIONS)
            )
    return found


def _read_face(path: str) -> np.ndarray:
    """The 48x48 gray face in an image file; RowError says what is wrong with the file."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            image = np.asarray(img.convert("L"), np.uint8)
    except Exception as e:  # PIL raises many types for broken files
        raise RowError(image_files.describe(e)) from None
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise RowError(f"is {image.shape[1]}x{image.shape[0]}, expected 48x48")
    return image


def read_folders(root: str, skip_bad_rows: bool = False):
    """The `train/<emotion>/*.png` layout: ({split: (images, labels, keys)}, skipped, problems)."""
    lookup = {e.lower(): i for i, e in enumerate(EMOTIONS)}
    per_split: dict[str, tuple[list, list, list]] = {}
    bad = _BadInputs(skip_bad_rows)
    for split, folder, name in _folder_images(root):
        if folder.lower() not in lookup:
            raise DatasetError(
                f"{os.path.join(root, split, folder)}: unknown emotion folder {folder!r}; FER2013 "
                f"folders must be named {', '.join(e.lower() for e in EMOTIONS)} (any case)."
            )
        if not name:
            continue
        path = os.path.join(root, split, folder, name)
        try:
            image = _read_face(path)
        except RowError as e:
            bad.report(
                f"{path}: {e}",
                "Replace or delete that file, or set --config.data.skip_bad_rows=True "
                "to skip unreadable images.",
            )
            continue
        images, labels, keys = per_split.setdefault(split, ([], [], []))
        images.append(image[..., None])
        labels.append(lookup[folder.lower()])
        keys.append(os.path.join(split, folder, name))
    if not per_split:
        raise DatasetError(f"No FER2013 images found under {root}/train/<emotion>/. {MANUAL_INSTRUCTIONS}")
    return per_split, bad.skipped, bad.problems


# --------------------------------------------------------------------------------------------
# Which source a prepared dataset was built from.
# --------------------------------------------------------------------------------------------

_SHA256: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, this process


def _sha256(path: str, size: int, mtime_ns: int) -> str:
    key = (path, size, mtime_ns)
    if key not in _SHA256:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(HASH_BLOCK), b""):
                digest.update(block)
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]


def _folder_listing_sha256(root: str) -> tuple[int, str]:
    """(number of images, sha256 of the sorted image list with each file's size and mtime)."""
    digest, count = hashlib.sha256(), 0
    for split, folder, name in _folder_images(root):
        entry = os.path.join(split, folder, name)
        if name:
            st = os.stat(os.path.join(root, entry))
            entry += f"\t{st.st_size}\t{st.st_mtime_ns}"
            count += 1
        digest.update(entry.encode() + b"\n")
    return count, digest.hexdigest()


def source_digest(kind: str, path: str) -> dict:
    """What identifies the source `locate` found, recorded in the prepared dataset's metadata.

    csv: its path, size, mtime and the sha256 of its bytes; folders: the root, the number of
    images and the sha256 of the sorted list of image files with their sizes and mtimes (the
    images themselves are not read).
    """
    path = os.path.abspath(path)
    if kind == "csv":
        st = os.stat(path)
        return {
            "kind": kind, "path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": _sha256(path, st.st_size, st.st_mtime_ns),
        }
    count, sha = _folder_listing_sha256(path)
    return {"kind": kind, "path": path, "files": count, "sha256": sha}


def _same_csv(recorded: dict, path: str) -> bool:
    st = os.stat(path)
    if st.st_size != recorded.get("size"):
        return False
    if path == recorded.get("path") and st.st_mtime_ns == recorded.get("mtime_ns"):
        return True  # untouched: no need to read it
    return _sha256(path, st.st_size, st.st_mtime_ns) == recorded.get("sha256")


def source_change(recorded, kind: str, path: str) -> str | None:
    """Why the source at `path` is not the one `recorded` when the dataset was prepared (a phrase
    naming both, to follow "the dataset in <dir> "), or None when it is the same.

    A CSV is the same when it has the recorded path, size and mtime, or else the recorded size
    and sha256 (a copy elsewhere, or a touched file); a folder layout when its file listing
    (names, sizes, mtimes) is. A dataset prepared without a record counts as changed.
    """
    path = os.path.abspath(path)
    if not recorded or not isinstance(recorded, dict):
        return f"has no record of the source it was prepared from (the source is now {path})"
    was = recorded.get("path", "?")
    if recorded.get("kind") != kind:
        return f"was prepared from {was} ({recorded.get('kind')}), not from {path} ({kind})"
    if kind == "csv":
        same = _same_csv(recorded, path)
    else:
        same = _folder_listing_sha256(path)[1] == recorded.get("sha256")
    if same:
        return None
    if was == path:
        return f"was prepared from {path}, which has changed since"
    return f"was prepared from {was}, not from {path}, whose content differs"


class Fer2013(tfds.core.GeneratorBasedBuilder):
    """FER2013: 35,887 48x48 gray faces, 7 emotions (Kaggle CSV or folders, manual download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_INSTRUCTIONS

    def __init__(self, *, skip_bad_rows: bool = False, **kwargs):
        self.skip_bad_rows = skip_bad_rows
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "FER2013 (ICML 2013 Challenges in Representation Learning): 48x48 grayscale "
                "faces labelled with one of 7 emotions."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
                    "label": tfds.features.ClassLabel(names=EMOTIONS),
                }
            ),
            supervised_keys=("image", "label"),
            homepage=KAGGLE_URL,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        try:
            manual_dir = os.fspath(dl_manager.manual_dir)
        except AssertionError as e:  # tfds: manual dir missing or empty
            raise DatasetError(f"FER2013 manual dir problem: {e}") from None
        kind, path = locate(manual_dir)
        digest = source_digest(kind, path)  # before reading: a file changed meanwhile is seen next time
        reader = read_csv if kind == "csv" else read_folders
        per_split, skipped, problems = reader(path, self.skip_bad_rows)
        if skipped:
            logging.warning(
                "fer2013: skipped %d malformed rows/images of %s (skip_bad_rows=True); first: %s",
                skipped, path, "; ".join(problems),
            )
            print(f"fer2013: skipped {skipped} malformed rows/images of {path}", flush=True)
        self.info.metadata["skipped_rows"] = skipped
        self.info.metadata["source"] = path
        self.info.metadata["source_digest"] = digest
        return {
            split: self._generate_examples(images, labels, keys)
            for split, (images, labels, keys) in sorted(per_split.items())
        }

    def _generate_examples(self, images, labels, keys):
        for image, label, key in zip(images, labels, keys):
            yield key, {"image": image, "label": label}


def write_csv(path: str, images, labels, usages) -> None:
    """Writes faces in the exact Kaggle format (header `emotion,pixels,Usage`): for tests,
    benchmarks, and exporting a subset. images: uint8 [N, 48, 48(, 1)]; usages: Training /
    PublicTest / PrivateTest per row."""
    images = np.asarray(images, np.uint8).reshape(len(labels), NUM_PIXELS)
    with open(path, "w", newline="") as f:
        f.write("emotion,pixels,Usage\n")
        for image, label, usage in zip(images, labels, usages):
            f.write(f"{int(label)},{' '.join(map(str, image.tolist()))},{usage}\n")
