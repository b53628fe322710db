"""MNIST and FashionMNIST from the standard IDX files, plain or gzip-compressed.

Files are looked for in ``root/<ClassName>/raw/`` (torchvision's layout) and then in ``root/`` itself; for each
file the uncompressed name is tried before ``.gz``. IDX: two zero bytes, a type code, the number of dimensions,
then each dimension as a big-endian int32, then the values, big-endian.
"""
import gzip
import os
import struct

import numpy as np

from dtorch.vision.datasets.vision import VisionDataset, download, missing_files_error

_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_NOTE = "(uncompressed files without the .gz suffix do as well, here or directly under root)\n"
_IDX_CODES = {dt.newbyteorder("=").kind + str(dt.itemsize): code for code, dt in _IDX_TYPES.items()}


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_idx(path):
    """Reads an IDX file (``.gz`` decompressed on the fly) into a native-endian NumPy array.

    Example:
        >>> read_idx("train-labels-idx1-ubyte").shape   # doctest: +SKIP
        (60000,)
    """
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (header bytes {raw[:4]!r})")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}i", raw[4:4 + 4 * ndim])
    dtype = _IDX_TYPES[raw[2]]
    count = int(np.prod(shape)) if shape else 1
    start = 4 + 4 * ndim
    if len(raw) - start != count * dtype.itemsize:
        raise ValueError(f"{path}: header promises shape {shape} of {dtype}, but holds {len(raw) - start} bytes")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Writes ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.kind + str(array.dtype.itemsize))
    if code is None:
        raise ValueError(f"IDX cannot hold dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    body = array.astype(_IDX_TYPES[code]).tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + body)


class MNIST(VisionDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey.

    Args:
        root: the directory holding ``MNIST/raw/`` (or the four files directly).
        train: the training set, else the test set.
        transform: applied to each image (a 28x28 uint8 NumPy array), e.g. ``transforms.ToTensor()``.
        target_transform: applied to each label (an int).
        download: fetch the files first if they are missing; offline this raises naming the files to supply.

    Example:
        >>> ds = MNIST("data", train=False, transform=transforms.ToTensor())   # doctest: +SKIP
        >>> ds[0][0].shape, ds[0][1]                                           # doctest: +SKIP
        (dtorch.Size([1, 28, 28]), 7)
    """

    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    files = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        super().__init__(root, transform, target_transform)
        self.train = train
        if download and self._find_all() is None:
            self.download()
        paths = self._find_all()
        if paths is None:
            raise missing_files_error(type(self).__name__, self.raw_folder,
                                      [f + ".gz" for f in self._all_files()], self.mirrors, note=_NOTE)
        images, labels = (read_idx(p) for p in paths)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{type(self).__name__}: images {images.shape} and labels {labels.shape} do not match")
        self._images = images.astype(np.uint8, copy=False)
        self._targets = labels.astype(np.int64)

    @property
    def raw_folder(self):
        return os.path.join(self.root, type(self).__name__, "raw")

    @property
    def class_to_idx(self):
        return {name: i for i, name in enumerate(self.classes)}

    def _all_files(self):
        return [f for split in (True, False) for f in self.files[split]]

    def _find(self, name):
        for folder in (self.raw_folder, self.root):
            for candidate in (name, name + ".gz"):
                path = os.path.join(folder, candidate)
                if os.path.isfile(path):
                    return path
        return None

    def _find_all(self):
        paths = [self._find(name) for name in self.files[self.train]]
        return None if None in paths else paths

    def download(self):
        """Downloads the gzip files of both splits into ``raw_folder`` (kept compressed; read as they are)."""
        try:
            for name in self._all_files():
                if self._find(name) is None:
                    download(self.mirrors, name + ".gz", self.raw_folder)
        except RuntimeError as error:
            raise missing_files_error(type(self).__name__, self.raw_folder,
                                      [f + ".gz" for f in self._all_files()], self.mirrors, error, _NOTE) from None


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing (see ``MNIST`` for the arguments)."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
