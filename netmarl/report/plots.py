"""Learning-curve plots: mean over seeds with a shaded 95% bootstrap band."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and clusters have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from netmarl.report.stats import bootstrap_ci  # noqa: E402


def curve_colors(
    panels: Sequence[tuple[str, Mapping[str, object]]],
) -> dict[str, str]:
    """One colour per curve label across all panels (in order of first appearance), so a
    learner keeps its colour from panel to panel even when panels hold different learners."""
    labels = list(dict.fromkeys(label for _, curves in panels for label in curves))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(labels) > len(cycle):
        cycle = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]
    return {label: cycle[i % len(cycle)] for i, label in enumerate(labels)}


def plot_panels(
    panels: Sequence[tuple[str, Mapping[str, tuple[np.ndarray, np.ndarray]]]],
    path: str | Path,
    ylabel: str = "return",
    xlabel: str = "environment steps",
) -> None:
    """One subplot per panel; each panel maps a curve label to (steps [T], values [seeds, T])."""
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    colors = curve_colors(panels)
    for ax, (title, curves) in zip(axes.flat, panels, strict=False):
        for label, (steps, values) in curves.items():
            band = bootstrap_ci(values)
            color = colors[label]
            ax.plot(steps, band.mean, color=color, label=f"{label} (n={len(values)})")
            ax.fill_between(steps, band.low, band.high, color=color, alpha=0.25)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
