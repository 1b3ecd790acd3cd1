#!/usr/bin/env python
"""Report which datasets a data root holds: CIFAR-10/100 (with md5 checks), ImageFolder and
Tiny-ImageNet trees, their image counts and classes. Warns, never fails (exit status 0).

    python scripts/check_data.py [ROOT]     # ROOT defaults to $LWT_DATA_DIR, else ./data
"""

import sys

from lwt.data.check import main

if __name__ == "__main__":
    sys.exit(main())
