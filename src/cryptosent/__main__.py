"""`python -m cryptosent` runs the CLI."""

from cryptosent.cli import main

main()
