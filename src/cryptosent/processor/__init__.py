"""The processor: Kafka `tweets` -> validate -> score -> sinks -> commit.

- `loop`: the consumer loop and rebalance handling (`Processor`)
- `checkpoint`: per-sink offsets; flush the sinks, then commit (`Checkpoint`)
- `transform`: messages -> valid tweets and dead letters -> a scored batch
- `dead_letters`: invalid messages to `<topic>.dlq` with their reason
- `alerts`: the periodic alert job
- `build`: all of it wired from Settings (`build_processor`)
"""

from cryptosent.processor.build import build_processor
from cryptosent.processor.loop import Processor, ProcessorOptions, ProcessStats

__all__ = ["ProcessStats", "Processor", "ProcessorOptions", "build_processor"]
