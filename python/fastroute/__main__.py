"""`python -m fastroute` is the `fastroute` command."""

from fastroute.cli import main

main()
