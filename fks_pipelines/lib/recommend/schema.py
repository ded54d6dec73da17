"""What a generator must return (sent to the model as JSON Schema), and the inputs it decides from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from fks_pipelines.lib.portfolio.sizing import Limits, limits

if TYPE_CHECKING:
    from fks_pipelines.lib.recommend.feedback import Record
    from fks_pipelines.lib.recommend.guarding import Guarding


class SymbolRecommendation(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # Infinity/NaN (or 1e400) are invalid answers

    symbol: str
    action: Literal["buy", "sell", "hold"]
    target_allocation: float = Field(
        ge=0, le=1, description="Share of the account's equity to hold in this symbol after acting."
    )
    entry: float | None = Field(
        default=None, gt=0, description="Entry price (the current close unless a limit is intended)."
    )
    stop_loss: float | None = Field(default=None, gt=0)
    take_profit: float | None = Field(default=None, gt=0)
    horizon_days: int = Field(ge=1, le=90)
    confidence: float = Field(ge=0, le=1)
    rationale: str = Field(min_length=1, max_length=2000)
    evidence: list[str] = Field(default_factory=list, description="Ids of the provided documents this relies on.")


class AccountRecommendation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str
    recommendations: list[SymbolRecommendation]


def response_schema() -> dict:
    return AccountRecommendation.model_json_schema()


@dataclass(frozen=True)
class RetrievedDocument:
    id: str
    kind: str
    symbol: str | None
    as_of: datetime
    text: str
    # Why it is in the context: "today" (the decision day's summary), "signal" (the day's fired signals),
    # "strategy" (the latest choice's record), "state" (the strategy's position), "analog" (a similar past day).
    role: str = "today"
    # An analog's forward returns known at the decision time: {"1d": 0.012, "7d": None (not yet known), ...}.
    outcomes: dict[str, float | None] | None = None


@dataclass
class SymbolContext:
    symbol: str
    price: float  # the close of the decision day
    daily_volatility: float | None  # 30-day, per day
    return_1d: float | None
    indicators: dict
    signals: dict  # strategy -> {"entry": bool, "exit": bool, "params": {...}}
    strategy: dict | None  # the walk-forward choice: strategy, params, oos metrics, decided_at
    regime: dict | None  # regime, next_day_probabilities
    current_allocation: float
    documents: list[RetrievedDocument] = field(default_factory=list)
    # The chosen strategy's position at the decision day's close (analytics.strategy_state): strategy, params,
    # position (flat/long/short), since, entry_price, unrealised_pnl, as_of. None: no state row (cash).
    state: dict | None = None
    # What happened the last times the strategy it follows held in today's regime, as known at the decision
    # (lib/recommend/feedback.py). None: no strategy or regime to follow.
    record: Record | None = None

    @property
    def chosen_strategy(self) -> str | None:
        """The strategy the decision follows: its state's, else the latest walk-forward choice's (None: none)."""
        return (self.state or {}).get("strategy") or (self.strategy or {}).get("strategy")

    @property
    def regime_name(self) -> str | None:
        return (self.regime or {}).get("regime")


@dataclass
class AccountContext:
    account: str
    kind: str
    decided_at: datetime  # every input is as of this moment
    equity: float
    cash: float
    symbols: list[SymbolContext]
    # The account's protections and history (lib/recommend/guarding.py); None: no guard acts (e.g. a shadow).
    guarding: Guarding | None = None
    guard_acts: list = field(default_factory=list)  # set by sizing: the acts of the guards on this decision
    # Whether the rules engine calibrates its confidence by each symbol's record (FKS_FEEDBACK; off by default).
    calibrate: bool = False

    @property
    def limits(self) -> Limits:
        """The tier's caps for this account's equity and kind (sizing and the prompt both read these)."""
        return limits(max(self.equity, 0.0), self.kind)

    @property
    def retrieved_ids(self) -> list[str]:
        return [d.id for s in self.symbols for d in s.documents]
