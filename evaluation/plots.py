"""PNG charts of the benchmark and accuracy tables (matplotlib: the ``plots`` extra).

- ``plot_speed``: frames/s per backend and precision, one panel per model (``bench/precision.py
  --plots DIR``).
- ``plot_accuracy``: AP, AP50 and IDF1 per variant and mode, one panel per model
  (``python -m evaluation.report --plots DIR``).

Both read the rows those tools print as markdown tables, so a saved table can be drawn again:
``python -m evaluation.plots accuracy table.md --out accuracy.png`` (or ``speed``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

INSTALL_HINT = "pip install 'visdeploy[plots]' (matplotlib)"
ACCURACY_METRICS = ("AP", "AP50", "IDF1")
COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3")


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(f"charts need matplotlib: {INSTALL_HINT}") from err
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def read_table(text: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in ``text`` as ``{header: cell}`` dicts."""
    lines = [line.strip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines[:-1]) if line.startswith("|")
                  and lines[i + 1].startswith("|") and set(lines[i + 1]) <= set("|-: ")), None)
    if start is None:
        raise ValueError("no markdown table (a header row and a |---| row) in the text")
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


def _panels(plt, groups: dict[str, list], width_per_bar: float):
    n = max(len(v) for v in groups.values())
    fig, axes = plt.subplots(1, len(groups), squeeze=False,
                             figsize=(max(4.0, 1.2 + width_per_bar * n) * len(groups), 3.4))
    return fig, axes[0]


def plot_speed(rows: list[dict[str, str]], path: str | Path, *, title: str = "") -> Path:
    """Bar chart of ``frames/s`` per ``backend`` for each ``preset`` (or ``model``) of the
    latency-table ``rows``; written to ``path`` (PNG)."""
    plt = _pyplot()
    groups: dict[str, list[tuple[str, float]]] = {}
    for row in rows:
        model = row.get("preset") or row.get("model") or "model"
        groups.setdefault(model, []).append((row["backend"], float(row["frames/s"])))
    # one colour per backend across all panels (a panel may lack a backend)
    backends = list(dict.fromkeys(name for bars in groups.values() for name, _ in bars))
    colour = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(backends)}
    fig, axes = _panels(plt, groups, 0.75)
    for ax, (model, bars) in zip(axes, groups.items()):
        names = [name.replace("_", " ") for name, _ in bars]
        values = [value for _, value in bars]
        ax.bar(names, values, color=[colour[name] for name, _ in bars])
        for x, value in enumerate(values):
            ax.text(x, value, f"{value:.2f}", ha="center", va="bottom", fontsize=8)
        ax.set_title(model, fontsize=10)
        ax.set_ylabel("frames/s (higher is better)", fontsize=8)
        ax.tick_params(axis="x", labelsize=8, rotation=20)
        ax.tick_params(axis="y", labelsize=8)
        ax.margins(y=0.15)
    return _save(fig, plt, path, title)


def plot_accuracy(rows: list[dict[str, str]], path: str | Path, *, title: str = "") -> Path:
    """Grouped bars of AP, AP50 and IDF1 per (variant, mode) for each model of the
    ``evaluation.report`` table ``rows``; written to ``path`` (PNG)."""
    plt = _pyplot()
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(row["model"], []).append(row)
    fig, axes = _panels(plt, groups, 0.9)
    width = 0.8 / len(ACCURACY_METRICS)
    for ax, (model, model_rows) in zip(axes, groups.items()):
        for m, metric in enumerate(ACCURACY_METRICS):
            xs = [i + (m - 1) * width for i in range(len(model_rows))]
            ax.bar(xs, [float(r[metric]) for r in model_rows], width, label=metric,
                   color=COLOURS[m])
        ax.set_xticks(range(len(model_rows)))
        ax.set_xticklabels([f"{r['variant']}\n{r['mode']}" for r in model_rows], fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(model, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(fontsize=7, ncols=3, loc="upper left")
    return _save(fig, plt, path, title)


def _save(fig, plt, path: str | Path, title: str) -> Path:
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.plots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["speed", "accuracy"])
    parser.add_argument("table", help="markdown file whose first table has the rows")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    try:
        rows = read_table(Path(args.table).read_text(encoding="utf-8"))
        plot = plot_speed if args.kind == "speed" else plot_accuracy
        print(plot(rows, args.out, title=args.title))
    except KeyError as err:
        print(f"error: {args.table}: the table has no column {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError, ImportError) as err:
        print(f"error: {args.table}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
