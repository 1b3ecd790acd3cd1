"""lwt: greedy layerwise training of CNNs, compared with end-to-end training, on PyTorch Lightning."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # lazy: `import lwt` (and the CLI's start-up) stays free of torch until a run is loaded
    if name in ("load_run", "TrainedRun"):
        from lwt.run import load as reload

        return getattr(reload, name)
    raise AttributeError(f"module 'lwt' has no attribute {name!r}")
