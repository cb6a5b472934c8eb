"""``python -m rnn``: see ``rnn/cli.py``."""

import sys

from .cli import main

sys.exit(main())
