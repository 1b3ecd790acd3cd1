import sys

from lwt.cli import main

sys.exit(main())
