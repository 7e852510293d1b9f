"""``python -m monitor``: the same as the ``mcap-monitor`` console script."""

import sys

from monitor.cli import main

sys.exit(main())
