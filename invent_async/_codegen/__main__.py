"""``python -m invent_async._codegen``: write (or ``--check``) the generated sync client."""

import sys

from . import main

sys.exit(main())
