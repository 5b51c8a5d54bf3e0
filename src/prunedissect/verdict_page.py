"""The one-page answer: the ``verdict`` table (:mod:`prunedissect.uncertainty`) as Markdown and
as a self-contained HTML page, leading with the verdict per method and linking the figures.

Both renderings come from the same blocks (:func:`verdict_blocks`: headings, paragraphs and
tables of plain strings), so the two pages cannot say different things.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from prunedissect.overview import percent_label
from prunedissect.tables import method_order
from prunedissect.uncertainty import ALL_LAYERS

HYPOTHESES = {
    "A": "no change until accuracy drops",
    "B": "pruning raises interpretability",
    "C": "pruning lowers interpretability",
    "undecided": "not enough evidence for A, B or C",
}
"""Frankle & Bau's hypotheses (section 4), in the words of the page."""
_QUANTITY = {"interpretable_units": "interpretable units", "unique_concepts": "distinct concepts"}

Block = tuple[str, object]  # ("h1" | "h2" | "p", text) or ("table", (header, rows))


def _percent(density: float) -> str:
    return f"{percent_label(density)}%" if np.isfinite(density) else "–"


def _number(value: float, fmt: str = "{:.1f}") -> str:
    return "–" if not np.isfinite(value) else fmt.format(value)


_AGREEING = {"A": "within", "B": "above", "C": "below"}


def _evidence(row: pd.Series) -> str:
    """The numbers behind one verdict, in one phrase."""
    level0 = f"{_number(row['level0_value'])} at level 0"
    if not np.isfinite(row["change"]):
        return f"{level0}; {row['reason']}"
    change = (
        f"{row['change']:+.1f} [{row['change_low']:+.1f}, {row['change_high']:+.1f}] at "
        f"{_percent(row['decisive_density'])}"
    )
    word = _AGREEING.get(row["verdict"])
    if word is None:
        return f"{level0}, {change}; {row['reason']}"
    return f"{level0}, {change}; {row['trials_agreeing']} of {row['trials']} trials {word}"


def verdict_blocks(
    verdict: pd.DataFrame,
    *,
    confidence: float,
    accuracy_drop: float,
    replicates: int,
    figures: Mapping[str, str],
    methods: Sequence[str] | None = None,
) -> list[Block]:
    """The page as blocks: the answer per method (every dissected layer together), then the
    table per method, layer and quantity, then how it was judged and the figures (name -> link).
    """
    order = method_order(verdict["method"], methods)
    whole = verdict[verdict["layer"] == ALL_LAYERS].set_index(["method", "quantity"])
    blocks: list[Block] = [("h1", "What pruning does to interpretability: the verdict")]
    answers = []
    for method in order:
        parts = []
        for quantity, words in _QUANTITY.items():
            if (method, quantity) in whole.index:
                row = whole.loc[(method, quantity)]
                parts.append(f"**{row['verdict']}** for {words} ({_evidence(row)})")
        drop = whole.loc[method].iloc[0]["accuracy_drop_density"] if parts else np.nan
        accuracy = (
            f"accuracy drops at density {_percent(drop)}"
            if np.isfinite(drop)
            else "accuracy never drops"
        )
        answers.append(f"**{method}** ({accuracy}): " + " and ".join(parts) + ".")
    blocks += [("p", text) for text in answers]
    legend = "; ".join(f"{key}: {words}" for key, words in HYPOTHESES.items())
    blocks.append(
        (
            "p",
            f"{legend}. Counts over every dissected layer together; changes are level minus "
            f"level 0, "
            f"the mean over trials with its paired {confidence:.0%} bootstrap interval over "
            f"{replicates} resamples of the probe images. The untrained network of each trial "
            f"is the floor.",
        )
    )
    header = [
        "method",
        "layer",
        "quantity",
        "verdict",
        "level 0",
        "untrained",
        "change at decisive density",
        "trials agreeing",
        "accuracy drops at",
        "reason",
    ]
    rows = []
    ordered = verdict.assign(_m=verdict["method"].map({m: i for i, m in enumerate(order)}))
    ordered = ordered.assign(_all=ordered["layer"] == ALL_LAYERS)
    for _, row in ordered.sort_values(["_m", "_all", "layer"], kind="stable").iterrows():
        change = "–"
        if np.isfinite(row["change"]):
            change = (
                f"{row['change']:+.1f} [{row['change_low']:+.1f}, {row['change_high']:+.1f}] "
                f"at {_percent(row['decisive_density'])}"
            )
        rows.append(
            [
                row["method"],
                row["layer"],
                _QUANTITY.get(row["quantity"], row["quantity"]),
                row["verdict"],
                _number(row["level0_value"]),
                _number(row["floor_value"]),
                change,
                f"{row['trials_agreeing']} / {row['trials']}",
                _percent(row["accuracy_drop_density"]),
                row["reason"],
            ]
        )
    blocks += [("h2", "Per method, layer and quantity"), ("table", (header, rows))]
    blocks += [
        ("h2", "How the verdict is judged"),
        (
            "p",
            f"Accuracy drops at the first pruned level whose trial-mean top-1 is more than "
            f"{accuracy_drop * 100:g} point(s) below level 0's (Frankle & Bau's criterion); only "
            f"the levels before it are judged. At each judged level and trial the paired "
            f"bootstrap interval of (level - level 0) lies below 0, above 0 or contains it. C: "
            f"some level lies below 0 in every trial and none above; B: the reverse; A: every "
            f"trial contains 0 at every judged level; undecided otherwise (trials disagree, the "
            f"quantity rises at one density and falls at another, or no level is judged).",
        ),
        ("h2", "Figures"),
    ]
    blocks += [("p", f"[{name}]({link})") for name, link in figures.items()]
    return blocks


def _md_text(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(blocks: Sequence[Block]) -> str:
    lines = []
    for kind, content in blocks:
        if kind == "h1":
            lines += [f"# {content}", ""]
        elif kind == "h2":
            lines += [f"## {content}", ""]
        elif kind == "p":
            lines += [str(content), ""]
        else:
            header, rows = content
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_md_text(str(c)) for c in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    """Escape, then the two Markdown forms the blocks use: **bold** and [name](link)."""
    text = html.escape(text, quote=True)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)


_STYLE = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto;line-height:1.4}"
    "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:.2em .5em;"
    "text-align:left}th{background:#f3f3f3}"
)


def to_html(blocks: Sequence[Block]) -> str:
    title = next(str(c) for k, c in blocks if k == "h1")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
    ]
    for kind, content in blocks:
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{html.escape(str(content))}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline_html(str(content))}</p>")
        else:
            header, rows = content
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header))
            for row in rows:
                cells = "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                out.append(f"<tr>{cells}</tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
