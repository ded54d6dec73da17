"""One account's recommendation for one day: ask the model (if configured), validate, repair once, fall
back to the rules engine on any failure (recorded, never a silent hold), then size deterministically."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from fks_pipelines.lib.llm.client import InProcessVLLM, LLMError, OpenAICompatibleClient
from fks_pipelines.lib.portfolio.guards import Act
from fks_pipelines.lib.portfolio.sizing import Proposal, size
from fks_pipelines.lib.recommend.guarding import apply_guards
from fks_pipelines.lib.recommend.prompt import build_messages
from fks_pipelines.lib.recommend.rules_engine import recommend_by_rules
from fks_pipelines.lib.recommend.schema import AccountContext, AccountRecommendation, response_schema


class InvalidRecommendation(ValueError):
    """A reply that parses but says something we cannot accept (wrong symbols, unknown evidence...)."""


@dataclass
class SizedRecommendation:
    symbol: str
    action: str
    target_allocation: float
    proposed_allocation: float
    current_allocation: float
    entry: float | None
    stop_loss: float | None
    take_profit: float | None
    horizon_days: int
    confidence: float
    rationale: str
    evidence: list[str]
    clamps: list[dict]
    reference_price: float
    strategy: str | None = None  # the strategy the decision followed (SymbolContext.chosen_strategy)
    regime: str | None = None  # the symbol's regime that day


@dataclass
class Generation:
    account: str
    generator: str  # llm | rules
    model: str | None
    messages: list[dict]
    recommendations: list[SizedRecommendation]
    raw_response: str | None = None
    llm_error: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempts: int = 0
    retrieved_ids: list[str] = field(default_factory=list)
    guard_acts: list[Act] = field(default_factory=list)  # every act of the account's protections (guarding.py)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number (finite numbers only)")


def parse_reply(text: str, context: AccountContext) -> AccountRecommendation:
    """The reply as a validated recommendation, or an exception saying exactly what is wrong. Strict JSON:
    Python's json accepts Infinity, -Infinity and NaN, which are refused here like any invalid answer."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as e:  # JSONDecodeError, or a non-finite constant
        raise InvalidRecommendation(f"not JSON: {e}") from None
    try:
        rec = AccountRecommendation.model_validate(data)
    except ValidationError as e:
        raise InvalidRecommendation(f"does not match the schema: {e.errors(include_url=False)[:5]}") from None
    if rec.account != context.account:
        raise InvalidRecommendation(f"account is {rec.account!r}, expected {context.account!r}")
    wanted = [s.symbol for s in context.symbols]
    got = [r.symbol for r in rec.recommendations]
    if sorted(got) != sorted(wanted):
        raise InvalidRecommendation(f"symbols {got} but exactly one recommendation for each of {wanted} is required")
    allowed = set(context.retrieved_ids)
    unknown = sorted({e for r in rec.recommendations for e in r.evidence} - allowed)
    if unknown:
        raise InvalidRecommendation(f"evidence ids {unknown} are not among the retrieved documents")
    return rec


def _sized(rec: AccountRecommendation, context: AccountContext) -> list[SizedRecommendation]:
    by_symbol = {s.symbol: s for s in context.symbols}
    lim = context.limits
    out = []
    for r in rec.recommendations:
        s = by_symbol[r.symbol]
        proposal = Proposal(r.action, r.target_allocation, r.entry, r.stop_loss, r.take_profit)
        sized, clamps = size(
            proposal,
            price=s.price,
            daily_volatility=s.daily_volatility,
            current_allocation=s.current_allocation,
            cash_share=context.cash / context.equity if context.equity > 0 else 0.0,
            lim=lim,
        )
        out.append(
            SizedRecommendation(
                r.symbol,
                sized.action,
                sized.target_allocation,
                r.target_allocation,
                s.current_allocation,
                sized.entry,
                sized.stop_loss,
                sized.take_profit,
                r.horizon_days,
                r.confidence,
                r.rationale,
                list(r.evidence),
                clamps,
                s.price,
                s.chosen_strategy,
                s.regime_name,
            )
        )
    if context.guarding is not None:
        context.guard_acts = apply_guards(out, context.guarding, equity=context.equity, decided_at=context.decided_at)
    return out


def generate(context: AccountContext, client: OpenAICompatibleClient | InProcessVLLM | None) -> Generation:
    messages = build_messages(context)
    generation = Generation(context.account, "rules", None, messages, [], retrieved_ids=context.retrieved_ids)
    if client is not None:
        generation.model = client.model
        conversation = list(messages)
        raw: list[str] = []
        try:
            reply = client.chat(conversation, response_schema())
            generation.attempts = 1
            total_latency = reply.latency_ms
            raw.append(reply.text)
            tokens = [reply.prompt_tokens, reply.completion_tokens]
            try:
                rec = parse_reply(reply.text, context)
            except InvalidRecommendation as first_problem:
                # One repair attempt: the model sees its answer and what was wrong with it.
                conversation += [
                    {"role": "assistant", "content": reply.text},
                    {
                        "role": "user",
                        "content": (
                            f"That answer is invalid: {first_problem}. Reply again with JSON only, matching the schema."
                        ),
                    },
                ]
                reply = client.chat(conversation, response_schema())
                generation.attempts = 2
                total_latency += reply.latency_ms
                raw.append(reply.text)
                tokens = [
                    (a or 0) + (b or 0)
                    for a, b in zip(tokens, [reply.prompt_tokens, reply.completion_tokens], strict=True)
                ]
                try:
                    rec = parse_reply(reply.text, context)
                except InvalidRecommendation as second_problem:
                    raise InvalidRecommendation(
                        f"{first_problem}; after one repair attempt: {second_problem}"
                    ) from None
            generation.generator = "llm"
            generation.messages = conversation
            generation.raw_response = raw[-1]
            generation.latency_ms, (generation.prompt_tokens, generation.completion_tokens) = total_latency, tokens
            generation.recommendations = _sized(rec, context)
            generation.guard_acts = context.guard_acts
            return generation
        except (LLMError, InvalidRecommendation) as e:
            generation.llm_error = f"{type(e).__name__}: {e}"
            generation.raw_response = raw[-1] if raw else None
    generation.recommendations = _sized(recommend_by_rules(context), context)
    generation.guard_acts = context.guard_acts
    return generation


def shadow_generation(context: AccountContext, cash: float, positions: dict[str, float]) -> Generation:
    """The rules engine's recommendation from ``context``'s market inputs and documents (the same point-in-time
    facts the LLM read), for an account holding ``cash`` and ``positions`` (the shadow ledger that follows the
    rules): equity and current allocations are recomputed at the context's closes, then sized as usual."""
    value = {s.symbol: positions.get(s.symbol, 0.0) * s.price for s in context.symbols}
    equity = cash + sum(value.values())
    symbols = [replace(s, current_allocation=value[s.symbol] / equity if equity > 0 else 0.0) for s in context.symbols]
    # The shadow ledger has its own history, which the guards do not read: it is the generator alone, unguarded.
    shadow = replace(context, equity=equity, cash=cash, symbols=symbols, guarding=None, guard_acts=[])
    return generate(shadow, None)
