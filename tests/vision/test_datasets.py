"""Vision datasets: tiny files written in the standard formats and read back; offline download errors; the
shipped digits set."""
import hashlib
import os
import pickle
import urllib.error
import urllib.request

import numpy as np
import pytest

import dtorch
from dtorch.utils.data import DataLoader
from dtorch.vision import datasets, transforms
from dtorch.vision.datasets import CIFAR10, MNIST, Digits, FashionMNIST, read_idx, write_idx


def write_mnist(folder, n_train=5, n_test=3, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), images)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), labels)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, array)
        back = read_idx(str(tmp_path / name))
        assert back.dtype == np.dtype(dtype) and np.array_equal(back, array)


def test_idx_header_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "l", np.array([7, 2], np.uint8))
    assert (tmp_path / "l").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 2])
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(str(tmp_path / "bad"))
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1]))
    with pytest.raises(ValueError, match="holds 1 bytes"):
        read_idx(str(tmp_path / "short"))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_mnist_reads_raw_and_gz(tmp_path, gz, cls):
    arrays = write_mnist(tmp_path / cls.__name__ / "raw", gz=gz)
    for train, prefix in ((True, "train"), (False, "t10k")):
        ds = cls(tmp_path, train=train)
        images, labels = arrays[prefix]
        assert len(ds) == len(labels)
        image, label = ds[1]
        assert image.dtype == np.uint8 and image.shape == (28, 28) and np.array_equal(image, images[1])
        assert label == int(labels[1]) and isinstance(label, int)
        assert isinstance(ds.data, dtorch.Tensor) and tuple(ds.data.shape) == (len(labels), 28, 28)
        assert ds.targets.tolist() == labels.astype(int).tolist()
    assert len(cls.classes) == 10


def test_mnist_with_transforms_through_a_loader(tmp_path):
    write_mnist(tmp_path, n_train=6)  # files directly under root are found too
    ds = MNIST(tmp_path, transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
               target_transform=lambda y: y + 100)
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert tuple(x.shape) == (4, 1, 28, 28) and x.dtype == dtorch.float32
    assert float(x.numpy().min()) >= -1 and float(x.numpy().max()) <= 1
    assert all(v >= 100 for v in y.tolist())


def _offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_mnist_missing_files_named(tmp_path):
    with pytest.raises(RuntimeError, match="train-images-idx3-ubyte.gz") as info:
        MNIST(tmp_path)
    assert "t10k-labels-idx1-ubyte.gz" in str(info.value) and str(tmp_path) in str(info.value)


def test_download_offline_names_the_files(tmp_path, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(RuntimeError) as info:
        FashionMNIST(tmp_path, download=True)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "network unreachable" in message
    assert os.path.join(str(tmp_path), "FashionMNIST", "raw") in message
    with pytest.raises(RuntimeError, match="data_batch_1") as info:
        CIFAR10(tmp_path, download=True)
    assert "cifar-10-python.tar.gz" in str(info.value)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no partial files left behind


def write_cifar(root, per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    written = {}
    for name in CIFAR10.train_list + CIFAR10.test_list:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        with open(os.path.join(folder, name), "wb") as f:  # bytes keys, as the official Python 2 pickles have
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data}, f, protocol=2)
        written[name] = (data, labels)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR10.default_classes]}, f, protocol=2)
    return written


def test_cifar10_reads_python_batches(tmp_path):
    written = write_cifar(tmp_path)
    train = CIFAR10(tmp_path, train=True)
    test = CIFAR10(tmp_path, train=False)
    assert len(train) == 20 and len(test) == 4
    data, labels = written["data_batch_2"]
    image, label = train[5]  # second sample of the second batch
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert np.array_equal(image, data[1].reshape(3, 32, 32).transpose(1, 2, 0)) and label == labels[1]
    assert test.classes[3] == "cat" and test.class_to_idx["truck"] == 9
    # torchvision keeps CIFAR10's images as a NumPy array and its labels as a list (MNIST's are Tensors)
    assert isinstance(train.data, np.ndarray) and train.data.shape == (20, 32, 32, 3) and train.data.dtype == np.uint8
    assert np.array_equal(train.data[5], image)
    assert isinstance(train.targets, list) and train.targets[5] == label and isinstance(train.targets[5], int)
    assert tuple(transforms.ToTensor()(image).shape) == (3, 32, 32)


def test_cifar10_refuses_pickles_that_run_code(tmp_path):
    write_cifar(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": os.system}, f)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        CIFAR10(tmp_path, train=False)


def test_digits_shipped_data_and_split():
    images, labels = datasets.digits.load_digits_arrays()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert int(images.max()) == 16 and sorted(set(labels.tolist())) == list(range(10))
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    assert digest == "65e5b4619795efb40c1082f4c350c049e4ad552200d369b6ae99e21eef5e72c5"
    train, test = Digits(train=True), Digits(train=False)
    assert (len(train), len(test)) == (1437, 360)
    assert np.array_equal(test.raw_images, images[1437:]) and test.targets.tolist() == labels[1437:].tolist()
    assert np.bincount(test.targets.numpy(), minlength=10).min() >= 33
    image, label = train[0]
    assert image.shape == (8, 8) and image.dtype == np.uint8 and int(image.max()) <= 255 and label == 0
    assert np.array_equal(train._images[0] == 255, images[0] == 16)
    assert os.path.isfile(os.path.join(os.path.dirname(datasets.digits.DATA_FILE), "PROVENANCE.md"))


def test_digits_loader_batches():
    loader = DataLoader(Digits(train=False, transform=transforms.ToTensor()), batch_size=64, shuffle=True,
                        generator=dtorch.Generator().manual_seed(0))
    batches = list(loader)
    assert len(batches) == 6 and tuple(batches[0][0].shape) == (64, 1, 8, 8)
    assert sum(len(b[1].tolist()) for b in batches) == 360
