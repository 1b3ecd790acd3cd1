"""``lwt data prepare``: the subcommand's options (the work is in lwt/data/prepare*.py)."""

from __future__ import annotations

import argparse
import os

from lwt.data.prepare import DATASETS
from lwt.data.sources import IMAGENETTE

HELP = """Prepare a dataset under --root, as lwt's loaders read it (data.root=ROOT).

  cifar10, cifar100   the python tarballs from cs.toronto.edu, md5 as torchvision publishes it
  tiny-imagenet       tiny-imagenet-200.zip from Stanford; val/ re-foldered to val/<wnid>/images/
  imagenette          fast.ai's imagenette2[-320|-160].tgz (--size), md5 as torchvision publishes it
  imagenet-subset     the classes of --classes out of an ILSVRC-2012 copy (--source); see docs/data.md

The archive is taken from --archive PATH, else from its usual file name under --root, else downloaded with
--download. Offline, the error names the URL, the file and where to put it. A failure leaves nothing behind.

examples:
  lwt data prepare tiny-imagenet --root data            # data/tiny-imagenet-200.zip -> data/tiny-imagenet-200/
  lwt data prepare cifar100 --root data --download
  lwt data prepare imagenet-subset --root data --source /datasets/ILSVRC \\
      --classes experiments/class_lists/imagenet_100.txt  # -> data/imagenet-100/
"""


def cmd_prepare(args) -> int:
    if args.dataset == "imagenet-subset":
        from lwt.data.prepare_imagenet import prepare_subset

        prepare_subset(args.root, args.source, args.classes, args.name, args.val_labels, args.link)
    else:
        from lwt.data.prepare import prepare

        prepare(args.dataset, args.root, archive=args.archive, download=args.download, md5=args.md5, size=args.size)
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("data", help="prepare datasets: lwt data prepare NAME --root DIR")
    data = p.add_subparsers(dest="data_command", required=True)
    p = data.add_parser("prepare", help="unpack, check and lay out a dataset under --root", description=HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=DATASETS, metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    p.add_argument("--root", default=os.environ.get("LWT_DATA_DIR") or "data",
                   help="the data root it is prepared under (default: $LWT_DATA_DIR, else ./data)")
    p.add_argument("--archive", metavar="PATH", help="the downloaded archive (default: its usual name under --root)")
    p.add_argument("--download", action="store_true", help="download the archive when it is not there")
    p.add_argument("--md5", metavar="HEX", help="expect this md5 instead of the published one (e.g. a re-packed "
                   "copy you trust), or 'none' to skip the check")
    p.add_argument("--size", default="full", choices=list(IMAGENETTE), help="imagenette: which archive")
    g = p.add_argument_group("imagenet-subset")
    g.add_argument("--source", metavar="DIR", help="an ILSVRC-2012 tree: train/<wnid>/ and val/ (foldered, or flat "
                   "with LOC_val_solution.csv or --val-labels), or Kaggle's folder holding ILSVRC/Data/CLS-LOC")
    g.add_argument("--classes", default="experiments/class_lists/imagenet_100.txt", metavar="LIST",
                   help="class list, one wnid per line (default: ImageNet-100 of CMC / solo-learn)")
    g.add_argument("--name", help="folder under --root (default: the list's name, e.g. imagenet-100)")
    g.add_argument("--val-labels", metavar="FILE", help="labels of a flat val/: LOC_val_solution.csv or "
                   "'ILSVRC2012_val_00000001.JPEG n01751748' lines")
    g.add_argument("--link", default="copy", choices=["copy", "hardlink", "symlink"],
                   help="how images get into the subset (default: copy)")
    p.set_defaults(func=cmd_prepare)
