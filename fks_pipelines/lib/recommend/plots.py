"""The evaluation's picture: every curve's equity (as a multiple of its starting equity) above its drawdown
(underwater: equity below its running peak), one colour per curve in both panels. PNG bytes, headless."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from fks_pipelines.lib.recommend.evaluation import Curve


def equity_drawdown_png(
    curves_by_label: Mapping[str, Sequence[Curve]], *, title: str, log_scale: bool = False
) -> bytes:
    """``curves_by_label``: e.g. ``{"demo-personal (rules)": [ledger, cash, buy_and_hold, strategy_only]}``.
    A curve that starts at zero equity (an empty account) is drawn flat at 1 rather than divided by zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 5), dpi=90, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    for label, curves in curves_by_label.items():
        for c in curves:
            equity = np.asarray(c.equity, dtype=float)
            base = equity[0] if len(equity) and equity[0] > 0 else None
            relative = equity / base if base else np.ones_like(equity)
            peak = np.maximum.accumulate(relative)
            drawdown = np.where(peak > 0, relative / peak - 1, 0.0)
            (line,) = top.plot(c.days, relative, lw=1.1, label=f"{label}: {c.baseline}")
            bottom.plot(c.days, drawdown * 100, lw=0.9, color=line.get_color())
    if log_scale:
        from matplotlib.ticker import ScalarFormatter

        top.set_yscale("log")
        top.yaxis.set_major_formatter(ScalarFormatter())  # 0.5, 1, 2 rather than 10^-0.3 ...
        top.yaxis.set_minor_formatter(ScalarFormatter())
    top.set_title(title, fontsize=9)
    top.set_ylabel("equity (x start)")
    bottom.set_ylabel("drawdown %")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
