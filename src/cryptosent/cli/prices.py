"""`cryptosent prices mock|coinbase|kraken|binance|replay`: prices into the `prices` topic (keyed
by coin), with the same live progress line and summary as `generate`; prices Kafka did not
acknowledge make the exit status 1. Each command makes one `StopSignal` first (Ctrl-C, SIGTERM,
``--duration``) and hands it to the Kafka check, the feed, pacing and the flush."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosent.cli.common import err, fail, parse_rate, user_errors
from cryptosent.cli.ingest import run_ingest
from cryptosent.config import Settings, get_settings

if TYPE_CHECKING:
    from cryptosent.model import PriceTick
    from cryptosent.runtime import StopSignal
    from cryptosent.sources.base import Source
    from cryptosent.sources.exchanges.pairs import PairMap
    from cryptosent.sources.market import MarketScript

prices_app = typer.Typer(
    help="Prices into Kafka (topic `prices`): mock, replay, or live from a public exchange feed.",
    no_args_is_help=True,
)

CoinsOption = Annotated[
    str | None,
    typer.Option(
        "--coins", help="Comma-separated tickers (BTC,ETH); default: the setting PRICE_COINS."
    ),
]
CountOption = Annotated[int | None, typer.Option(min=1, help="Stop after N prices.")]
DurationOption = Annotated[float | None, typer.Option(min=0.1, help="Stop after S seconds.")]


def _coin_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    coins = [c.strip().upper() for c in text.split(",") if c.strip()]
    if not coins:
        fail("--coins is empty: give tickers such as BTC,ETH")
    return coins


def _pairs(exchange: str | None = None) -> PairMap:
    from cryptosent import relevance
    from cryptosent.sources.exchanges.kraken import KRAKEN_NAMES
    from cryptosent.sources.exchanges.pairs import PairMap

    return PairMap(relevance.coin_tickers(), KRAKEN_NAMES if exchange == "kraken" else None)


def market_from(settings: Settings) -> MarketScript:
    """The mock market of the settings (the same one `generate` writes its posts from)."""
    from cryptosent.sources.mock import mock_market

    return mock_market(
        settings.mock_market_seed,
        sentiment_lead_minutes=settings.mock_sentiment_lead_minutes,
        price_lead_minutes=settings.mock_price_lead_minutes,
    )


def _produce(
    source: Source[PriceTick],
    what: str,
    stop: StopSignal,
    rate_per_s: float | None,
    count: int | None,
) -> None:
    run_ingest(
        source, what=what, rate_per_s=rate_per_s, stop=stop, count=count,
        topic=get_settings().prices_topic, unit="prices",
    )  # fmt: skip


@prices_app.command("mock")
def mock(
    coins: Annotated[
        str | None,
        typer.Option("--coins", help="Comma-separated tickers (BTC,ETH); default: every coin."),
    ] = None,
    rate: Annotated[
        str, typer.Option(help="Trades per second ('50/s'), per minute ('3000/min') or 'max'.")
    ] = "50/s",
    count: CountOption = None,
    duration: DurationOption = None,
    seed: Annotated[int | None, typer.Option(help="Deterministic trades for a given seed.")] = None,
) -> None:
    """Mock trades whose prices the mock market's events move, with the mock posts."""
    from cryptosent.runtime import StopSignal
    from cryptosent.sources.mock_prices import MockPrices

    settings = get_settings()
    market = market_from(settings)
    chosen = _coin_list(coins)
    pairs = _pairs()
    unknown = [c for c in chosen or [] if not pairs.is_coin(c)]
    if unknown:
        fail(f"unknown coin(s) {', '.join(unknown)}: use tickers of the coin catalogue")
    rate_per_s = parse_rate(rate)
    popular = sorted(market.coins, key=lambda c: -market.weights[c])
    posts_first = [c for c in popular if market.leader(c) == "sentiment"][:6]
    price_first = [c for c in popular if market.leader(c) == "price"][:6]
    err.print(
        f"mock market (seed {market.seed}): posts lead the price by "
        f"{market.sentiment_lead_minutes:g} min for {', '.join(posts_first)}, ...; the price "
        f"leads the posts by {market.price_lead_minutes:g} min for {', '.join(price_first)}, ...",
        highlight=False,
    )
    with StopSignal(duration) as stop:
        source = MockPrices(market, coins=chosen, seed=seed)
        _produce(source, "prices mock", stop, rate_per_s, count)


def _live(
    exchange: str,
    coins: str | None,
    count: int | None,
    duration: float | None,
    channel: str | None = None,
    quote: str | None = None,
) -> None:
    from cryptosent.runtime import StopSignal
    from cryptosent.sources.exchanges.base import ExchangeSource
    from cryptosent.sources.exchanges.binance import BinanceSource
    from cryptosent.sources.exchanges.coinbase import CoinbaseSource
    from cryptosent.sources.exchanges.kraken import KrakenSource

    settings = get_settings()
    chosen = _coin_list(coins) or _coin_list(settings.price_coins) or []
    with StopSignal(duration) as stop:
        source: ExchangeSource
        with user_errors():
            if exchange == "coinbase":
                source = CoinbaseSource(
                    chosen, pairs=_pairs(), url=settings.coinbase_url, channel=channel, stop=stop
                )
            elif exchange == "kraken":
                source = KrakenSource(
                    chosen, pairs=_pairs("kraken"), url=settings.kraken_url, channel=channel,
                    stop=stop,
                )  # fmt: skip
            else:
                source = BinanceSource(
                    chosen, pairs=_pairs(), url=settings.binance_url, quote=quote or "USDT",
                    stop=stop,
                )  # fmt: skip
        _produce(source, f"prices {exchange}", stop, None, count)


ChannelOption = Annotated[
    str | None, typer.Option(help="trades (every trade, with its size) or ticker.")
]


@prices_app.command("coinbase")
def coinbase(
    coins: CoinsOption = None,
    channel: ChannelOption = None,
    count: CountOption = None,
    duration: DurationOption = None,
) -> None:
    """Live USD trades (matches) or tickers from Coinbase Exchange; no key needed."""
    _live("coinbase", coins, count, duration, channel=channel)


@prices_app.command("kraken")
def kraken(
    coins: CoinsOption = None,
    channel: ChannelOption = None,
    count: CountOption = None,
    duration: DurationOption = None,
) -> None:
    """Live USD trades or tickers from Kraken (websocket v2); no key needed."""
    _live("kraken", coins, count, duration, channel=channel)


@prices_app.command("binance")
def binance(
    coins: CoinsOption = None,
    quote: Annotated[
        str, typer.Option(help="USDT (binance.com), USD (Binance.US) or USDC.")
    ] = "USDT",
    count: CountOption = None,
    duration: DurationOption = None,
) -> None:
    """Live trades from Binance's <symbol>@trade streams; no key needed."""
    _live("binance", coins, count, duration, quote=quote)


@prices_app.command("replay")
def replay(
    path: Annotated[Path, typer.Argument(help="JSON Lines or CSV file (.gz allowed).")],
    speed: Annotated[
        float | None, typer.Option(min=0.0001, help="Original rhythm sped up X times.")
    ] = None,
    rate: Annotated[
        str | None, typer.Option(help="Fixed rate instead ('500/s', '3000/min', 'max').")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl or csv (default: from the suffix).")
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(help="CSV column mapping FIELD=COLUMN, e.g. --column ts=timestamp."),
    ] = None,
    count: CountOption = None,
    duration: DurationOption = None,
) -> None:
    """Replay prices from a file into Kafka; bad lines are reported with their number, skipped."""
    from cryptosent.runtime import StopSignal
    from cryptosent.sources.price_replay import price_replay_source

    if speed is not None and rate is not None:
        fail("use --speed or --rate, not both")
    if fmt not in (None, "jsonl", "csv"):
        fail(f"--format {fmt!r}: use jsonl or csv")
    mapping: dict[str, str] = {}
    for item in column or []:
        field, sep, name = item.partition("=")
        if not sep or not field.strip() or not name.strip():
            fail(f"--column {item!r}: use FIELD=COLUMN")
        mapping[field.strip()] = name.strip()
    bad_lines = 0

    def report(line_number: int, reason: str) -> None:
        nonlocal bad_lines
        bad_lines += 1
        if bad_lines <= 20:
            # one line, however long the path: PATH:LINE stays whole for editors and grep
            line = f"{path}:{line_number}: skipped: {reason}"
            err.print(line, highlight=False, markup=False, soft_wrap=True)
        elif bad_lines == 21:
            err.print("(more bad lines: only the count is shown from here on)")

    with StopSignal(duration) as stop:
        with user_errors():
            source = price_replay_source(
                path, pairs=_pairs(), fmt=fmt, columns=mapping, on_bad_line=report,  # type: ignore[arg-type]
                speed=speed, rate_per_s=parse_rate(rate) if rate else None, stop=stop,
            )  # fmt: skip
        try:
            _produce(source, "prices replay", stop, None, count)
        finally:
            if bad_lines:
                err.print(f"{bad_lines:,} bad line(s) skipped in {path}")


def register(app: typer.Typer) -> None:
    """Add the command group to the app."""
    app.add_typer(prices_app, name="prices")
