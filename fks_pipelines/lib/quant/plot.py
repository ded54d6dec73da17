"""``fks plot``: price with entry and exit markers, and the equity curve, as a PNG (matplotlib, headless) and
optionally an interactive HTML (plotly, when installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.quant.report import SymbolBacktest


def plot_backtest(result: SymbolBacktest, title: str, png: Path, html: Path | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    close = np.asarray(result.bars["close"])
    x = np.arange(len(close))
    entries, exits = np.flatnonzero(result.entries), np.flatnonzero(result.exits)
    fig, (price, equity) = plt.subplots(2, 1, figsize=(11, 6), dpi=100, sharex=True, height_ratios=(2, 1))
    price.plot(x, close, lw=0.9, color="0.2", label="close")
    price.scatter(entries, close[entries], marker="^", color="tab:green", s=28, label="entry signal", zorder=3)
    price.scatter(exits, close[exits], marker="v", color="tab:red", s=28, label="exit signal", zorder=3)
    price.set_title(title, fontsize=10)
    price.legend(loc="upper left", fontsize=8)
    price.grid(alpha=0.3)
    equity.plot(x, result.equity, lw=1.0, color="tab:blue")
    equity.set_ylabel("equity")
    equity.set_xlabel("bar")
    equity.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, format="png")
    plt.close(fig)
    written = [png]
    if html is not None:
        try:
            import plotly.graph_objects as go
            from plotly.subplots import make_subplots
        except ImportError:
            raise BadInputError("--html needs plotly (pip install plotly)") from None
        figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=(0.65, 0.35))
        figure.add_trace(go.Scatter(x=x, y=close, name="close", line={"width": 1}), row=1, col=1)
        figure.add_trace(go.Scatter(x=entries, y=close[entries], mode="markers", name="entry"), row=1, col=1)
        figure.add_trace(go.Scatter(x=exits, y=close[exits], mode="markers", name="exit"), row=1, col=1)
        figure.add_trace(go.Scatter(x=x, y=result.equity, name="equity"), row=2, col=1)
        figure.update_layout(title=title)
        figure.write_html(html)
        written.append(html)
    return written
