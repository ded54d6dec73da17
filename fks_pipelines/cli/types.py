"""The option types of `fks`: a bad value is a usage error naming the option (one line, exit 2), found before
anything starts or is written."""

from __future__ import annotations

from datetime import UTC, date, datetime

import click

DAYS = click.IntRange(1, 3660)  # fks ingest sample / fks demo --days: at most ten years
PORT = click.IntRange(1, 65535)


class Day(click.ParamType):
    """A UTC day, ISO spelled (2024-01-31)."""

    name = "date"

    def convert(self, value, param, ctx) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date like 2024-01-31", param, ctx)


class Moment(click.ParamType):
    """An ISO time (2024-01-31, 2024-01-31T12:00, 2024-01-31T12:00+02:00), UTC when it has no offset."""

    name = "time"

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO time like 2024-01-31 or 2024-01-31T12:00+00:00", param, ctx)
        return when if when.tzinfo else when.replace(tzinfo=UTC)


class Interval(click.ParamType):
    """One of Binance's fixed-length kline intervals (1m, 1h, 1d ...)."""

    name = "interval"

    def convert(self, value, param, ctx) -> str:
        from fks_pipelines.lib.klines import interval_timedelta

        try:
            interval_timedelta(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return value


class Intervals(click.ParamType):
    """A comma-separated list of Binance intervals (1h,1d)."""

    name = "intervals"

    def convert(self, value, param, ctx) -> list[str]:
        if isinstance(value, list):
            return value
        items = [Interval().convert(x.strip(), param, ctx) for x in value.split(",") if x.strip()]
        if not items:
            self.fail(f"{value!r} names no interval", param, ctx)
        return items


class Symbols(click.ParamType):
    """Comma-separated symbols, each by the one symbol rule (lib.symbols), upper-cased. A bad one is a
    BadInputError naming the option and the value (``--symbols: invalid symbol 'X'Y' ...``, exit 2); an empty
    value is no symbols (the command's default)."""

    name = "symbols"

    def convert(self, value, param, ctx) -> list[str]:
        from fks_pipelines.lib.symbols import check_symbol

        if isinstance(value, list):
            return value
        where = param.opts[0] if param is not None and param.opts else "--symbols"
        return [check_symbol(s.strip().upper(), where=where) for s in value.split(",")] if value.strip() else []


class GapRate(click.ParamType):
    """The sample source's gap rate: a chance in [0, 1)."""

    name = "rate"

    def convert(self, value, param, ctx) -> float:
        from fks_pipelines.lib.sources.sample import check_gap_rate

        try:
            return check_gap_rate(float(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class CommaChoice(click.ParamType):
    """A comma-separated list of some of ``choices``, in the order given."""

    name = "list"

    def __init__(self, choices: tuple[str, ...]):
        self.choices = choices

    def convert(self, value, param, ctx) -> list[str]:
        if isinstance(value, list):
            return value
        items = [x.strip() for x in value.split(",") if x.strip()]
        if not items:
            self.fail(f"{value!r} names none of {', '.join(self.choices)}", param, ctx)
        for item in items:
            if item not in self.choices:
                self.fail(f"{item!r} is not one of {', '.join(self.choices)}", param, ctx)
        return items
