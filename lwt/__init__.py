"""lwt: greedy layerwise training of CNNs, compared with end-to-end training, on PyTorch Lightning."""

__version__ = "0.1.0"
