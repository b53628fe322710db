"""CIFAR-10 from the standard "python version" batches (``cifar-10-batches-py/``).

The batches are pickles. They are read with an unpickler that admits only the few NumPy names a batch needs
(array reconstruction and dtypes), so a tampered file cannot run code.
"""
import os
import pickle
import tarfile

import numpy as np

from dtorch.vision.datasets.vision import VisionDataset, download, missing_files_error

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which a batch never needs")
        return super().find_class(module, name)


def load_batch(path):
    """One CIFAR batch file as a dict with str keys (``data``, ``labels``, ...)."""
    with open(path, "rb") as f:
        entry = _BatchUnpickler(f, encoding="latin1").load()
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images, 32x32, ten classes.

    Args:
        root: the directory holding ``cifar-10-batches-py/``.
        train: the five training batches, else ``test_batch``.
        transform: applied to each image (a 32x32x3 uint8 NumPy array, HWC like a PIL image).
        target_transform: applied to each label (an int).
        download: fetch and unpack the archive first if the batches are missing; offline this raises naming the
            files to supply.

    Example:
        >>> ds = CIFAR10("data", train=False)   # doctest: +SKIP
        >>> ds[0][0].shape, ds.classes[ds[0][1]] # doctest: +SKIP
        ((32, 32, 3), 'cat')
    """

    base_folder = "cifar-10-batches-py"
    archive = "cifar-10-python.tar.gz"
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]
    train_list = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]
    test_list = ["test_batch"]
    meta_file = "batches.meta"
    default_classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        super().__init__(root, transform, target_transform)
        self.train = train
        if download and not self._complete():
            self.download()
        if not self._complete():
            raise missing_files_error(type(self).__name__, self.folder,
                                      self.train_list + self.test_list + [self.meta_file], self.mirrors)
        images, labels = [], []
        for name in self.train_list if train else self.test_list:
            entry = load_batch(os.path.join(self.folder, name))
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
        self._images = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1))  # to HWC
        self._targets = np.asarray(labels, dtype=np.int64)
        meta = os.path.join(self.folder, self.meta_file)
        names = load_batch(meta)["label_names"] if os.path.isfile(meta) else self.default_classes
        self.classes = [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    @property
    def data(self):
        """All images as one (N, 32, 32, 3) uint8 NumPy array, as torchvision's CIFAR10 keeps them."""
        return self._images

    @property
    def targets(self):
        """All labels as a list of ints, as torchvision's CIFAR10 keeps them."""
        return self._targets.tolist()

    @property
    def folder(self):
        return os.path.join(self.root, self.base_folder)

    def _complete(self):
        names = self.train_list if self.train else self.test_list
        return all(os.path.isfile(os.path.join(self.folder, n)) for n in names)

    def download(self):
        """Downloads ``cifar-10-python.tar.gz`` into ``root`` and unpacks it there."""
        try:
            path = download(self.mirrors, self.archive, self.root)
        except RuntimeError as error:
            raise missing_files_error(type(self).__name__, self.folder,
                                      self.train_list + self.test_list + [self.meta_file],
                                      [m + self.archive for m in self.mirrors], error) from None
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(self.root, filter="data")
