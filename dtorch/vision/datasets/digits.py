"""The UCI handwritten digits (8x8, 1,797 samples) shipped inside dtorch: a real dataset that needs no download,
for the main job, tests and examples. Provenance and licence (CC BY 4.0): ``dtorch/vision/_data/PROVENANCE.md``.
"""
import os

import numpy as np

from dtorch.vision.datasets.vision import VisionDataset

DATA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_data", "digits.npz")
NUM_TRAIN = 1437  # the fixed split: the first 1,437 samples (80 %) train, the last 360 test


def load_digits_arrays():
    """``(images, labels)``: all 1,797 samples as stored, uint8 pixels 0..16 of shape (1797, 8, 8), int64 labels."""
    with np.load(DATA_FILE) as archive:
        return archive["images"], archive["labels"]


class Digits(VisionDataset):
    """UCI "Optical Recognition of Handwritten Digits": 8x8 grey images of 0..9, with a fixed split.

    Images come as 8x8 uint8 NumPy arrays rescaled from the original 0..16 counts to 0..255
    (``round(v * 255 / 16)``), so ``transforms.ToTensor()`` gives values in [0, 1] as it does for MNIST; the original
    counts are in ``raw_images``.

    Args:
        root: unused (the data ships with dtorch); accepted so MNIST code runs unchanged.
        train: the first 1,437 samples, else the last 360 (classes balanced in both).
        transform: applied to each image, e.g. ``transforms.ToTensor()``.
        target_transform: applied to each label (an int).
        download: accepted and ignored (nothing to download).

    Example:
        >>> ds = Digits(train=False)
        >>> len(ds), ds[0][0].shape, ds[0][1]
        (360, (8, 8), 2)
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        super().__init__(root, transform, target_transform)
        self.train = train
        images, labels = load_digits_arrays()
        part = slice(0, NUM_TRAIN) if train else slice(NUM_TRAIN, None)
        self.raw_images = images[part]
        self._images = np.round(self.raw_images.astype(np.float32) * (255 / 16)).astype(np.uint8)
        self._targets = labels[part].astype(np.int64)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
