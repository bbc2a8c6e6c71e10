import gzip
import pickle

import numpy as np
import pytest

from autolambda import DataError, load_dataset
from autolambda.training.data import _load_cached


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    _load_cached.cache_clear()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    yield
    _load_cached.cache_clear()


def test_digits_is_the_default_and_split_is_seeded():
    a = load_dataset()
    assert a.name == "digits" and a.input_shape == (8, 8, 1) and a.n_classes == 10
    assert len(a.y_train) + len(a.y_val) == 1797
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    _load_cached.cache_clear()
    b = load_dataset()
    np.testing.assert_array_equal(a.x_train, b.x_train)
    c = load_dataset(seed=1)
    assert not np.array_equal(a.y_train, c.y_train)


def test_subset_is_stratified_and_sized():
    data = load_dataset("digits", n_train=300, n_val=200)
    assert len(data.y_train) == 300 and len(data.y_val) == 200
    assert np.bincount(data.y_train).min() >= 25  # all ten classes, about equally


def test_spare_training_images_join_the_validation_set(tmp_path):
    split = load_dataset("digits", n_train=300)
    pooled = load_dataset("digits", n_train=300, spare_to_val=True)
    assert np.array_equal(pooled.x_train, split.x_train)  # training is untouched
    assert len(split.y_val) == 540 and len(pooled.y_val) == 1797 - 300
    assert np.array_equal(pooled.x_val[:540], split.x_val)  # the split first, then the spare images
    train_rows = {row.tobytes() for row in pooled.x_train}
    spare = pooled.x_val[540:]
    # No image of the training subset is scored (digits has a few exact duplicates: count rows).
    assert sum(row.tobytes() in train_rows for row in spare) <= 5
    # A source with its own validation split keeps it as it is.
    path = tmp_path / "split.npz"
    x = np.random.default_rng(0).random((40, 6, 6)).astype(np.float32)
    np.savez(path, x_train=x, y_train=np.arange(40) % 2, x_val=x[:6], y_val=np.arange(6) % 2)
    assert len(load_dataset(str(path), n_train=10, spare_to_val=True).y_val) == 6


def test_npz_with_and_without_validation(tmp_path, tiny_npz):
    data = load_dataset(str(tiny_npz))
    assert data.input_shape == (8, 8, 1) and data.n_classes == 2
    path = tmp_path / "split.npz"
    x = np.zeros((10, 6, 6, 3), dtype=np.uint8)
    np.savez(path, x_train=x, y_train=np.arange(10) % 3, x_val=x[:4], y_val=np.array([0, 1, 2, 0]))
    data = load_dataset(str(path))
    assert len(data.y_val) == 4 and data.input_shape == (6, 6, 3) and data.n_classes == 3


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        ({"x": np.zeros((4, 8, 8)), "y_train": np.arange(4)}, "missing key"),
        ({"x_train": np.zeros((4, 8)), "y_train": np.arange(4)}, "shape"),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.zeros((4, 3))}, "one integer label"),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.arange(5)}, "4 images but y_train has 5"),
        ({"x_train": np.zeros((6, 8, 8)), "y_train": np.zeros(6, int)}, "single class"),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.array([0, 1, -1, 0])}, "label -1"),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.array([0, 1, 0, 1]),
          "x_val": np.zeros((2, 8, 8)), "y_val": np.array([0, 5])}, "out of range"),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.array([0, 1, 0, 1]), "x_val": np.zeros((2, 8, 8))}, "together"),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.array([0.5, 1, 0, 1])}, "integer class labels"),
        ({"x_train": np.zeros((4, 8, 8, 7)), "y_train": np.array([0, 1, 0, 1])}, "channels"),
    ],
)
def test_bad_npz_names_the_problem(tmp_path, arrays, fragment):
    with pytest.raises(DataError, match=fragment):
        load_dataset(_npz(tmp_path, **arrays))


def test_unknown_name_and_bad_sizes(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="n_train=5000"):
        load_dataset("digits", n_train=5000)
    with pytest.raises(DataError, match="n_train"):
        load_dataset("digits", n_train=1)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="not a .npz"):
        load_dataset(str(tmp_path / "notes.txt"))
    (tmp_path / "broken.npz").write_text("not a zip")
    with pytest.raises(DataError, match="readable"):
        load_dataset(str(tmp_path / "broken.npz"))


def test_image_folder(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    for label, value in (("cat", 30), ("dog", 200)):
        (root / label).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((12, 10), value + i, dtype=np.uint8)).save(root / label / f"{i}.png")
    data = load_dataset(str(root))
    assert data.input_shape == (12, 10, 1) and data.n_classes == 2
    assert len(data.y_train) + len(data.y_val) == 10
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(root / "dog" / "odd.png")
    _load_cached.cache_clear()
    with pytest.raises(DataError, match="odd.png"):
        load_dataset(str(root))


def test_image_folder_needs_two_classes(tmp_path):
    (tmp_path / "only" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="at least two"):
        load_dataset(str(tmp_path / "only"))


# ---- Keras' data sets, offline, from files placed in Keras' cache folder --------------


def test_mnist_from_keras_cache(tmp_path):
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(
        cache / "mnist.npz",
        x_train=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8),
        y_train=np.arange(30) % 10,
        x_test=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
        y_test=np.arange(10),
    )
    data = load_dataset("mnist")
    assert data.input_shape == (28, 28, 1) and len(data.y_val) == 10 and data.n_classes == 10
    assert data.x_train.max() <= 1.0


def _idx(path, array, header):
    with gzip.open(path, "wb") as f:
        f.write(b"\0" * header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_keras_cache(tmp_path):
    folder = tmp_path / "keras_home" / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    _idx(folder / "train-labels-idx1-ubyte.gz", np.arange(20) % 10, 8)
    _idx(folder / "train-images-idx3-ubyte.gz", np.zeros((20, 28, 28)), 16)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(10), 8)
    _idx(folder / "t10k-images-idx3-ubyte.gz", np.ones((10, 28, 28)), 16)
    data = load_dataset("fashion_mnist")
    assert len(data.y_train) == 20 and len(data.y_val) == 10 and data.input_shape == (28, 28, 1)
    assert data.x_val.max() == pytest.approx(1 / 255)


def test_cifar10_from_keras_cache(tmp_path):
    folder = tmp_path / "keras_home" / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3]}, f)
    data = load_dataset("cifar10")
    assert data.input_shape == (32, 32, 3) and len(data.y_train) == 20 and len(data.y_val) == 4


def test_missing_keras_file_offline_is_a_clear_error(tmp_path, monkeypatch):
    folder = tmp_path / "keras_home" / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    with pytest.raises(DataError, match="missing cache file"):
        load_dataset("fashion_mnist")


def test_boolean_labels_are_two_classes(tmp_path):
    path = tmp_path / "b.npz"
    np.savez(path, x_train=np.random.default_rng(0).random((40, 8, 8)), y_train=np.arange(40) % 2 == 1)
    data = load_dataset(str(path))
    assert data.n_classes == 2 and set(np.unique(data.y_train)) == {0, 1}
