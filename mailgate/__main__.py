"""``python -m mailgate`` is the same as the ``mailgate`` console script."""

from mailgate.cli import main

raise SystemExit(main())
