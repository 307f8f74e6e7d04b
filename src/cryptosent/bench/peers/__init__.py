"""Peer baselines: the same job as `cryptosent process`, written the seed's way and with Quix
Streams, measured on the same topic in the same run (`cryptosent bench --only peers`)."""
