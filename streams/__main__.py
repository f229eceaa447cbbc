"""`python -m streams`: the command line."""

from streams.cli.main import main

raise SystemExit(main())
