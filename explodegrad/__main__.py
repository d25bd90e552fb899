"""``python -m explodegrad``: the command line of :mod:`explodegrad.cli`."""

from explodegrad.cli import main

raise SystemExit(main())
