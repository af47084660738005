"""`python -m cli`: the same as the `vrm` entry point."""

from cli.main import main

main()
