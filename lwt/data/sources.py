"""Where each dataset ``lwt data prepare`` knows comes from: URL, file name, size and md5 of its archive.

The CIFAR and Imagenette values are torchvision's (``torchvision.datasets.CIFAR10.url`` / ``.tgz_md5``,
``CIFAR100``, ``Imagenette._ARCHIVES``; tests/data/test_data_prepare.py checks that they still agree). Stanford
publishes no md5 for Tiny-ImageNet; the one used is what many loaders record for that zip (ContinualAI
Avalanche's TinyImagenet among them), so a mismatch may also mean a re-packed copy: ``--md5`` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lwt.errors import LwtError


@dataclass(frozen=True)
class Archive:
    title: str
    url: str
    filename: str  # the name a browser or wget saves it under; looked for under --root
    md5: str
    md5_source: str  # who publishes (or records) the md5
    size: int | None  # bytes, where known
    folder: str  # what the archive unpacks to under --root (data.path, or CIFAR's fixed folder)


ARCHIVES = {
    "cifar10": Archive("CIFAR-10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                       "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                       "torchvision.datasets.CIFAR10", 170_498_071, "cifar-10-batches-py"),
    "cifar100": Archive("CIFAR-100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                        "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                        "torchvision.datasets.CIFAR100", 169_001_437, "cifar-100-python"),
    "tiny-imagenet": Archive("Tiny-ImageNet-200", "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                             "tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de",
                             "not published by Stanford; recorded by Avalanche and other loaders", 248_100_043,
                             "tiny-imagenet-200"),
}
IMAGENETTE = {  # --size: torchvision's names for fast.ai's three archives
    "full": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz", "fe2fc210e6bb7c5664d602c3cd71e612"),
    "320px": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz", "3df6f0d01a2c9592104656642f5e78a3"),
    "160px": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz", "e793b78cc4c9e9a4ccc0c1155377a412"),
}


def archive_for(name: str, size: str = "full") -> Archive:
    """The archive of dataset ``name`` (``size`` picks Imagenette's variant; other datasets have one)."""
    if name == "imagenette":
        if size not in IMAGENETTE:
            raise LwtError(f"--size {size} is not an Imagenette archive; choose one of: {', '.join(IMAGENETTE)}")
        url, md5 = IMAGENETTE[size]
        filename = url.rsplit("/", 1)[1]
        return Archive(f"Imagenette ({size})", url, filename, md5, "torchvision.datasets.Imagenette", None,
                       filename.removesuffix(".tgz"))
    if size != "full":
        raise LwtError(f"--size is for imagenette only (one of {', '.join(IMAGENETTE)}), not {name}")
    return ARCHIVES[name]


def describe(a: Archive) -> str:
    """What to fetch, as one phrase: URL, file name, size, md5 and who vouches for it."""
    size = f"{a.size:,} bytes, " if a.size else ""
    return f"{a.url} ({a.filename}, {size}md5 {a.md5}, {a.md5_source})"
