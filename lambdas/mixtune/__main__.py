"""`python -m mixtune`: the `mixtune` command."""

import sys

from mixtune.cli import main

sys.exit(main())
