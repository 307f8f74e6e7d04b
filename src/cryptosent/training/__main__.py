"""``python -m cryptosent.training``: train both learned analyzers (see pipeline.py)."""

from cryptosent.training.pipeline import main

main()
