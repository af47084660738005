"""A horizontal bar chart as SVG, rendered on the server (no script, no style attribute: the CSP
allows neither inline; colours come from the page's stylesheet through classes)."""

from __future__ import annotations

from markupsafe import Markup, escape

ROW = 26
LABEL_W = 220
BAR_W = 360


def bar_chart(labels: list[str], values: list[int], *, title: str) -> Markup:
    """One bar per label, longest first as given; an empty chart says so."""
    height = max(1, len(labels)) * ROW + 30
    width = LABEL_W + BAR_W + 60
    top = max(values, default=0) or 1
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="chart-title" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<text class="chart-title" x="0" y="16">{escape(title)}</text>',
    ]
    if not labels:
        parts.append('<text class="chart-label" x="0" y="44">no intents heard in this window</text>')
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 30 + i * ROW
        w = max(2, round(BAR_W * value / top))
        parts.append(f'<text class="chart-label" x="{LABEL_W - 8}" y="{y + 16}" text-anchor="end">{escape(label[:32])}</text>')
        parts.append(f'<rect class="chart-bar" x="{LABEL_W}" y="{y + 4}" width="{w}" height="{ROW - 8}" rx="3"/>')
        parts.append(f'<text class="chart-value" x="{LABEL_W + w + 6}" y="{y + 16}">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
