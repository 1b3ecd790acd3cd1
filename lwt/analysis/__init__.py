"""Measurements on trained networks, each also a ``lwt`` subcommand on a finished run directory.

- ``gap``: per-depth accuracy on un-augmented training images, validation and test, and the gap;
- ``probes``: linear probes on the frozen, pooled output of every block;
- ``cka``: linear CKA between every block of two networks;
- ``critical``: the greedy curriculum's accuracy-vs-depth curve, critical layer and marginal gains.

Nothing is imported here, so ``lwt --help`` does not pay for torch.
"""
