"""Live prices from public exchange websockets (no account, no key): Coinbase Exchange, Kraken
(websocket v2) and Binance. `base.py` holds what they share (connection loop, reconnects,
stall timer, stop, error kinds), `pairs.py` the mapping of exchange pairs to canonical coins.
"""
