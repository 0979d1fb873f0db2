"""`python -m virnet ...` runs the `virnet` command line."""

import sys

from cli import main

sys.exit(main())
