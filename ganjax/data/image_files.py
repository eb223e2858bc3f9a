"""Image files that TensorFlow decodes later, checked first with PIL, so that a broken file is a
`DatasetError` naming it instead of a `DecodeImage` traceback without a path, deep in training.

`check(paths, fix)` looks at every file once per process (a file found good is remembered by its
size and modification time; a new or changed file is looked at again). It does not decode what
it does not have to: a PNG's chunks and checksums are verified (`Image.verify`), a JPEG is fully
decoded only when it does not end with the JPEG end marker (a truncated file).
"""

from __future__ import annotations

import os

from ganjax.data.core import DatasetError

# What tfds' Image feature (`tf.image.decode_image`, animations expanded) turns into one
# [H, W, C] image (GIF and WebP come as [frames, H, W, C]). MPO is a multi-picture JPEG (some
# cameras); TF decodes its first picture.
DECODABLE_FORMATS = ("PNG", "JPEG", "MPO", "BMP")
JPEG_END = b"\xff\xd9"
MAX_LISTED = 3  # bad files named in one error message
_GOOD: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) of files found good


def describe(error: Exception) -> str:
    """What a PIL error says about a file, without the file's path (the caller names it)."""
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "is not an image (unrecognised content)"
    text = " ".join(str(error).split())  # one line
    return f"is broken ({type(error).__name__}: {text})"


def _ends_like_jpeg(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64))
        return JPEG_END in f.read()


def problem(path: str) -> str | None:
    """Why TensorFlow could not decode the image file `path` ('is ...'), or None if it can."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.format not in DECODABLE_FORMATS:
                return f"is a {img.format} image, not one that the pipeline reads (PNG, JPEG or BMP)"
            if img.format in ("JPEG", "MPO") and not _ends_like_jpeg(path):
                img.load()  # truncated? decoding tells
            elif img.format == "PNG":
                img.verify()
    except Image.DecompressionBombError:
        return None  # huge but well-formed: PIL's safety limit, not TensorFlow's
    except Exception as e:  # PIL raises many types for broken files
        return describe(e)
    return None


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def check(paths, fix: str) -> None:
    """Raises DatasetError naming the files among `paths` that TensorFlow could not decode (the
    first few and how many) and `fix`; one line. Files found good are not looked at again in
    this process while their size and modification time stay the same."""
    bad = []
    for path in paths:
        path = os.fspath(path)
        try:
            stamp = _stamp(path)
        except OSError as e:
            bad.append((path, f"cannot be read ({e.strerror})"))
            continue
        if _GOOD.get(path) == stamp:
            continue
        reason = problem(path)
        if reason is None:
            _GOOD[path] = stamp
        else:
            bad.append((path, reason))
    if not bad:
        return
    listed = "; ".join(f"{p} {reason}" for p, reason in bad[:MAX_LISTED])
    more = f" (and {len(bad) - MAX_LISTED} more)" if len(bad) > MAX_LISTED else ""
    count = "an image file" if len(bad) == 1 else f"{len(bad)} image files"
    raise DatasetError(f"Cannot decode {count}: {listed}{more}. {fix}")
