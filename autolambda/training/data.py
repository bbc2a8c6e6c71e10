"""Data sets: a fixed, seeded train/validation split as NumPy arrays.

``digits`` (scikit-learn's bundled 8x8 images) is the default and needs no download.
``mnist``, ``fashion_mnist`` and ``cifar10`` come through Keras' loaders; a file already
in Keras' cache folder is read without network. A ``.npz`` file or a folder of images in
class sub-folders are the user's own data.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autolambda.core.choices import DATASETS
from autolambda.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images as float32 ``(n, height, width, channels)`` in [0, 1], integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of one image."""
        return tuple(int(v) for v in self.x_train.shape[1:])  # type: ignore[return-value]


def load_dataset(
    name_or_path: str = "digits",
    *,
    n_train: int | None = None,
    n_val: int | None = None,
    val_fraction: float = 0.3,
    seed: int = 0,
    spare_to_val: bool = False,
) -> Dataset:
    """Load a data set by name or path, with a fixed, seeded train/validation split.

    Args:
        name_or_path: ``digits``, ``mnist``, ``fashion_mnist``, ``cifar10``, a ``.npz``
            file (``x_train``, ``y_train``, optionally ``x_val``, ``y_val``) or a folder
            with one sub-folder of images per class.
        n_train: Keep this many training images (a stratified, seeded subset); all if None.
        n_val: Keep this many validation images; all if None.
        val_fraction: Share held out for validation when the source has no split of its own.
        seed: Seed of the split and of the subsets; the same seed gives the same arrays.
        spare_to_val: When the source has no validation split of its own (digits, a
            ``.npz`` without ``x_val``, a folder), the training images ``n_train`` leaves
            out join the validation set, after the split's own images: a larger
            validation set makes every trial's score less noisy at no training cost.

    Results are cached per process (trials of one study share one copy).

    Example:
        >>> data = load_dataset("digits", n_train=300)
        >>> data.x_train.shape
        (300, 8, 8, 1)
    """
    for label, value in (("n_train", n_train), ("n_val", n_val)):
        if value is not None and (not isinstance(value, int) or value < 2):
            raise DataError(f"{label} must be an integer >= 2 but got {value!r}.")
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must lie strictly between 0 and 1 but got {val_fraction!r}.")
    key = str(name_or_path)
    if key not in DATASETS:
        path = Path(key).expanduser()
        if not path.exists():
            raise DataError(
                f"unknown dataset {key!r}: not one of {', '.join(DATASETS)} and no such file or folder."
            )
        key = str(path.resolve())
    return _load_cached(key, n_train, n_val, float(val_fraction), int(seed), bool(spare_to_val))


@functools.lru_cache(maxsize=4)
def _load_cached(
    key: str, n_train: int | None, n_val: int | None, val_fraction: float, seed: int, spare_to_val: bool = False
) -> Dataset:
    name, (x, y, xv, yv) = _read_source(key)
    x, y = _check_arrays(name, "x_train", "y_train", x, y)
    own_split = xv is not None
    if xv is None:
        x, y, xv, yv = _split(x, y, val_fraction, seed)
    else:
        xv, yv = _check_arrays(name, "x_val", "y_val", xv, yv)
        if xv.shape[1:] != x.shape[1:]:
            raise DataError(f"{name}: x_val images are {xv.shape[1:]} but x_train images are {x.shape[1:]}.")
    n_classes = int(y.max()) + 1
    _no_empty_class(name, y, n_classes, "in y_train", "labels must be 0..n_classes-1 with every class present")
    if yv.max() >= n_classes:
        raise DataError(
            f"{name}: validation label {int(yv.max())} is out of range: training labels are 0..{n_classes - 1}."
        )
    if len(np.unique(y)) < 2:
        raise DataError(f"{name}: the training labels hold a single class ({int(y[0])}); need at least two.")
    if n_train is not None:
        x, y, x_spare, y_spare = _subset(x, y, n_train, seed, "n_train", name, spare=True)
        if spare_to_val and not own_split and len(y_spare):
            xv, yv = np.concatenate([xv, x_spare]), np.concatenate([yv, y_spare])
    if n_val is not None:
        xv, yv = _subset(xv, yv, n_val, seed + 1, "n_val", name)
    _no_empty_class(name, y, n_classes, "in the training set after the split",
                    "every class needs training images" + (f": raise n_train (now {n_train})" if n_train is not None else ""))
    arrays = [_as_images(a) for a in (x, xv)]
    for a in arrays + [y, yv]:
        a.flags.writeable = False
    return Dataset(name=name, x_train=arrays[0], y_train=y, x_val=arrays[1], y_val=yv, n_classes=n_classes)


def _read_source(key: str):
    if key == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        # Pixel values are 0..16 in this set.
        return "digits", (bunch.images.astype(np.float32) / 16.0, bunch.target, None, None)
    if key in ("mnist", "fashion_mnist", "cifar10"):
        (x, y), (xv, yv) = _load_keras(key)
        return key, (x, y, xv, yv)
    path = Path(key)
    if path.is_dir():
        return path.name, _read_image_folder(path)
    if path.suffix == ".npz":
        return path.name, _read_npz(path)
    raise DataError(f"dataset file {key!r} is not a .npz file or a folder of class sub-folders.")


def keras_cache_dir() -> Path:
    """Keras' download cache for data sets (``$KERAS_HOME/datasets``, else ``~/.keras/datasets``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    if not os.access(home, os.W_OK) and not os.environ.get("KERAS_HOME"):
        home = os.path.join("/tmp", ".keras")  # where Keras itself falls back
    return Path(home) / "datasets"


def _load_keras(name: str):
    """A Keras data set: from Keras' cache when the file is there, else via Keras (download).

    Keras re-downloads a cached mnist/cifar10 file whose hash differs from the original;
    reading the cache directly lets offline machines with a pre-seeded cache work.
    """
    cache = keras_cache_dir()
    if name == "mnist" and (cache / "mnist.npz").exists():
        with np.load(cache / "mnist.npz", allow_pickle=False) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    if name == "fashion_mnist" and (cache / "fashion-mnist").is_dir():
        return _read_fashion(cache / "fashion-mnist")
    if name == "cifar10":
        folder = cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"
        if folder.is_dir():
            return _read_cifar(folder)
    import keras

    loader = getattr(keras.datasets, name)
    try:
        return loader.load_data()
    except Exception as exc:  # offline, or a broken download
        raise DataError(
            f"could not download {name} ({exc}); on an offline machine place the file in {cache}."
        ) from None


def _read_fashion(folder: Path):
    def read(fname: str, offset: int) -> np.ndarray:
        path = folder / fname
        if not path.exists():
            raise DataError(f"fashion_mnist: missing cache file {path}.")
        with gzip.open(path, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    y = read("train-labels-idx1-ubyte.gz", 8)
    x = read("train-images-idx3-ubyte.gz", 16).reshape(len(y), 28, 28)
    yv = read("t10k-labels-idx1-ubyte.gz", 8)
    xv = read("t10k-images-idx3-ubyte.gz", 16).reshape(len(yv), 28, 28)
    return (x, y), (xv, yv)


def _read_cifar(folder: Path):
    import pickle

    def read(fname: str):
        path = folder / fname
        if not path.exists():
            raise DataError(f"cifar10: missing cache file {path}.")
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        batch = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return data, np.asarray(batch["labels"])

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return (x, y), read("test_batch")


def _read_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            missing = {"x_train", "y_train"} - keys
            if missing:
                raise DataError(
                    f"{path.name}: missing key(s) {', '.join(sorted(missing))}; "
                    f"a .npz needs x_train and y_train (optionally x_val and y_val), found {sorted(keys)}."
                )
            if ("x_val" in keys) != ("y_val" in keys):
                raise DataError(f"{path.name}: x_val and y_val must be given together.")
            xv = f["x_val"] if "x_val" in keys else None
            yv = f["y_val"] if "y_val" in keys else None
            return f["x_train"], f["y_train"], xv, yv
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz file ({exc}).") from None


def _read_image_folder(path: Path):
    from PIL import Image

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{path}: needs one sub-folder of images per class, at least two; found {len(classes)}.")
    images, labels, shape, mode = [], [], None, None
    for label, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{folder}: class folder holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        for file in files:
            try:
                with Image.open(file) as img:
                    if mode is None:
                        mode = "L" if img.mode in ("L", "1", "P", "I", "F") else "RGB"
                    arr = np.asarray(img.convert(mode))
            except Exception as exc:  # UnidentifiedImageError (an OSError), DecompressionBombError, truncated files
                raise DataError(f"{file}: not a readable image ({type(exc).__name__}: {exc}).") from None
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise DataError(f"{file}: image is {arr.shape[:2]} but the others are {shape[:2]}; resize them to one size.")
            images.append(arr)
            labels.append(label)
    return np.stack(images), np.asarray(labels), None, None


def _check_arrays(name: str, xkey: str, ykey: str, x: np.ndarray, y: np.ndarray):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim not in (3, 4):
        raise DataError(f"{name}: {xkey} must have shape (n, height, width[, channels]) but has {x.shape}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{name}: {ykey} must hold one integer label per image but has shape {y.shape}.")
    if len(x) != len(y):
        raise DataError(f"{name}: {xkey} has {len(x)} images but {ykey} has {len(y)} labels.")
    if len(y) < 2:
        raise DataError(f"{name}: {xkey} holds {len(y)} image(s); need at least two.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{name}: {xkey} must hold numbers but holds {x.dtype} values.")
    if np.issubdtype(x.dtype, np.inexact):
        bad = ~np.isfinite(x)
        if bad.any():
            images = int(bad.reshape(len(x), -1).any(axis=1).sum())
            raise DataError(f"{name}: {xkey} has {int(bad.sum())} non-finite value(s) (NaN or inf) in {images} of "
                            f"{len(x)} images; every pixel must be a finite number.")
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.number):
            raise DataError(f"{name}: {ykey} must hold integer class labels but got {y.dtype} values.")
        bad = ~np.isfinite(y)
        if bad.any():
            raise DataError(f"{name}: {ykey} has {int(bad.sum())} non-finite label(s) (NaN or inf) of {len(y)}; "
                            "labels must be integers 0..n_classes-1.")
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise DataError(f"{name}: {ykey} must hold integer class labels but got {y.dtype} values.")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise DataError(f"{name}: {ykey} has label {int(y.min())}; labels must be 0..n_classes-1.")
    if x.ndim == 4 and x.shape[-1] not in (1, 3, 4):
        raise DataError(f"{name}: {xkey} has {x.shape[-1]} channels; expected 1, 3 or 4 (channels last).")
    return x, y


def _no_empty_class(name: str, y: np.ndarray, n_classes: int, where: str, fix: str) -> None:
    """A class without training images cannot be learnt, only lost: refuse it."""
    empty = np.flatnonzero(np.bincount(y, minlength=n_classes) == 0)
    if len(empty):
        listed = ", ".join(str(int(c)) for c in empty[:10]) + (" …" if len(empty) > 10 else "")
        raise DataError(f"{name}: class(es) {listed} of 0..{n_classes - 1} have no image {where}; {fix}.")


def _as_images(x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if np.issubdtype(x.dtype, np.integer):
        return (x.astype(np.float32) / 255.0)
    return x.astype(np.float32)


def _split(x, y, val_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=val_fraction, random_state=seed, stratify=stratify)
    return x_tr, y_tr, x_val, y_val


def _subset(x, y, n: int, seed: int, label: str, name: str, spare: bool = False):
    """A seeded, stratified subset of ``n`` images (and, with ``spare``, the rest too)."""
    if n > len(y):
        raise DataError(f"{name}: {label}={n} but only {len(y)} images are available.")
    if n == len(y):
        return (x, y, x[:0], y[:0]) if spare else (x, y)
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    ok = counts[counts > 0].min() >= 2 and n >= np.count_nonzero(counts)
    x_keep, x_rest, y_keep, y_rest = train_test_split(x, y, train_size=n, random_state=seed, stratify=y if ok else None)
    return (x_keep, y_keep, x_rest, y_rest) if spare else (x_keep, y_keep)
