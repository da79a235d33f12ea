"""What the two benchmark plots share: a headless pyplot and saving a finished figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed), imported only when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rows_axis(ax: Any, labels: list[str], xlabel: str, title: str) -> list[int]:
    """A horizontal-bar axis with one row per label, first at the top; the rows' positions."""
    y = list(range(len(labels)))
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return y


def save(fig: Any, title: str, out: Path) -> Path:
    """Title the figure, write it to ``out`` as a PNG and release it."""
    plt = pyplot()
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
