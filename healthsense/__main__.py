"""``python -m healthsense`` is the same as the ``healthsense`` command."""

import sys

from healthsense.cli.main import main

sys.exit(main())
