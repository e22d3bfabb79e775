"""The health report's charts: small SVG line charts, inlined into the one HTML file.

pygal, not matplotlib's SVG backend: pygal writes labels as SVG ``<text>``, so the browser (and
its PDF) draws Chinese with the system's CJK font (Debian ``fonts-noto-cjk``), where matplotlib
turns every glyph into paths and needs that font configured inside matplotlib; pygal is pure
Python, small, and a chart of a year of docks renders in a few milliseconds. Its default output
links a script from the internet and carries an inline config script and comments with URLs:
``js=[]`` drops the link, and ``svg()`` removes every ``<script>`` and comment from the tree, so
the page runs no script and names no address but the SVG namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

import pygal
from pygal.style import Style

SVG_NS = "http://www.w3.org/2000/svg"
_SCRIPT = {"script", f"{{{SVG_NS}}}script"}

# Print-friendly: white ground, dark text, the CJK font first so that Chinese labels render.
STYLE = Style(
    background="white", plot_background="white", foreground="#333", foreground_strong="#111",
    foreground_subtle="#999", colors=("#1f5fa8", "#c0392b", "#2e8b57", "#888"),
    font_family='"Noto Sans CJK SC", "Noto Sans CJK", "Noto Sans", sans-serif',
    label_font_size=10, major_label_font_size=10, legend_font_size=10, title_font_size=11,
)


def _strip(root: ET.Element) -> None:
    for parent in root.iter():
        for child in list(parent):
            if child.tag in _SCRIPT or child.tag is ET.Comment:
                parent.remove(child)


def line_chart(title: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *,
               y_range: tuple[float, float] | None = None, width: int = 290, height: int = 160) -> str:
    """One line chart as an SVG element (text), without script, comments or external references.

    ``series``: (legend, values), one value per x label, ``None`` where there was none.
    Dots only for short series (a dot per dock of a year makes a large file to no use).
    """
    chart = pygal.Line(
        js=[], disable_xml_declaration=True, explicit_size=True, width=width, height=height, style=STYLE,
        title=title, show_legend=len(series) > 1, legend_at_bottom=True, legend_box_size=8,
        show_dots=len(x_labels) <= 40, dots_size=2, allow_interruptions=True, x_label_rotation=0,
        show_minor_x_labels=False, x_labels_major_count=4, show_minor_y_labels=False, y_labels_major_count=5, truncate_label=-1, range=y_range,
        margin=4, spacing=6, tooltip_border_radius=0, print_values=False,
    )
    chart.x_labels = list(x_labels)
    for name, values in series:
        chart.add(name, list(values))
    root = chart.render_tree()
    _strip(root)
    return ET.tostring(root, encoding="unicode")
