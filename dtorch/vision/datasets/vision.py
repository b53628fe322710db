"""The base of the vision datasets and the one place that downloads files.

``download=True`` tries each official address in turn (standard library ``urllib``, a short timeout). Offline, or
when every address fails, it raises a RuntimeError that names the files to put under the dataset's folder by
hand, so a machine without network access can still be prepared.
"""
import os
import shutil
import urllib.error
import urllib.request

from dtorch import factories
from dtorch.utils.data import Dataset

DOWNLOAD_TIMEOUT = 30  # seconds per attempt


class VisionDataset(Dataset):
    """Holds ``root``, ``transform`` (applied to the image) and ``target_transform`` (to the label).

    Subclasses fill ``self._images`` (a NumPy array, PIL's layout per image) and ``self._targets`` (int64).
    """

    def __init__(self, root, transform=None, target_transform=None):
        self.root = os.path.expanduser(os.fspath(root)) if root is not None else None
        self.transform = transform
        self.target_transform = target_transform

    @property
    def data(self):
        """All images as a uint8 Tensor (as torchvision's ``.data``)."""
        return factories.from_numpy(self._images)

    @property
    def targets(self):
        """All labels as an int64 Tensor."""
        return factories.from_numpy(self._targets)

    def __len__(self):
        return len(self._targets)

    def __getitem__(self, index):
        image, target = self._images[index], int(self._targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"    Root location: {self.root}")
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)


def download(urls, filename, folder):
    """Fetches ``filename`` into ``folder`` from the first of ``urls`` (base addresses) that answers.

    Raises:
        RuntimeError: naming the file, the folder and the addresses tried, when none answered.
    """
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, filename)
    errors = []
    for base in urls:
        url = base + filename
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(target + ".part", "wb") as f:
                shutil.copyfileobj(response, f)
            os.replace(target + ".part", target)
            return target
        except (urllib.error.URLError, OSError, ValueError) as error:
            errors.append(f"{url}: {error}")
            if os.path.exists(target + ".part"):
                os.unlink(target + ".part")
    raise RuntimeError(f"could not download {filename} ({'; '.join(errors)})")


def missing_files_error(name, folder, files, urls, cause=None, note=""):
    """The RuntimeError that lists the files to put under ``folder`` by hand, and where to get them."""
    listing = "\n".join(f"    {folder}{os.sep}{f}" for f in files)
    where = "\n".join(f"    {u}" for u in urls)
    message = (f"{name}: dataset not found and could not be downloaded. Put these files there by hand:\n{listing}\n"
               f"{note}(from one of:\n{where})")
    if cause is not None:
        message += f"\nDownload error: {cause}"
    return RuntimeError(message)
