"""Training of the learned sentiment analyzers (needs the ``train`` extra: torch, scipy).

Nothing here runs in the pipeline; ``cryptosent model train`` and ``make model`` call it.
"""
