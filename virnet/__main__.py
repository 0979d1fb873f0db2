"""`python -m virnet ...` runs the `virnet` command line."""

import sys

from virnet.cli import main

sys.exit(main())
