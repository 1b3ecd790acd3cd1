"""Greedy stages, end-to-end training, the curriculum callback, and the runner that ties them."""

from lwt.training.curriculum import CriticalLayer, Curriculum, Plateau
from lwt.training.e2e import EndToEndModule
from lwt.training.stage import StageModule

__all__ = ["CriticalLayer", "Curriculum", "EndToEndModule", "Plateau", "StageModule"]
