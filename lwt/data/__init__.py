"""Datasets as LightningDataModules over in-memory uint8 tensors."""

from __future__ import annotations

from lwt.config import Config
from lwt.data.base import InMemoryDataModule
from lwt.data.cifar import LAYOUTS as CIFAR_LAYOUTS
from lwt.data.cifar import CifarDataModule
from lwt.data.imagefolder import ImageFolderDataModule

DATASETS = (*CIFAR_LAYOUTS, "imagefolder")

__all__ = ["DATASETS", "CifarDataModule", "ImageFolderDataModule", "InMemoryDataModule", "build_datamodule"]


def build_datamodule(cfg: Config) -> InMemoryDataModule:
    """The DataModule that ``cfg.data.name`` names, reading from ``cfg.data_root()``."""
    if cfg.data.name == "imagefolder":
        return ImageFolderDataModule(cfg.data, seed=cfg.seed, root=cfg.data_root())
    return CifarDataModule(cfg.data, seed=cfg.seed, root=cfg.data_root())
