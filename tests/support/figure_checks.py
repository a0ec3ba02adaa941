"""What every published figure must hold to, read back from the drawn matplotlib artists."""

from __future__ import annotations

import io
import struct

import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text
from oncopipe.delivery.figures import MIN_FONT_PT


def draw_figure(controlled, name: str):
    """(figure spec, the tables it draws, the drawn Figure) of figure ``name`` of a controlled result."""
    spec = next(f for f in controlled.result.figures if f.name == name)
    frames = {t: controlled.result.table(t).frame.copy() for t in spec.tables}
    return spec, frames, spec.draw(frames)


def visible_texts(fig: Figure) -> list[Text]:
    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
            and (t.axes is None or (t.axes.get_visible() and t.axes.axison) or t in t.axes.texts)]


def assert_readable(fig: Figure) -> None:
    """Every visible text is at least MIN_FONT_PT points; no two tick labels of one axis overlap."""
    small = [(t.get_text(), t.get_fontsize()) for t in visible_texts(fig) if t.get_fontsize() < MIN_FONT_PT]
    assert not small, small
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())


def lines_by_gid(fig: Figure, prefix: str) -> dict[str, object]:
    """Artists whose gid starts with ``prefix:``, keyed by the rest of the gid."""
    out = {}
    for artist in fig.findobj(lambda a: (a.get_gid() or "").startswith(prefix + ":")):
        out[artist.get_gid().split(":", 1)[1]] = artist
    return out


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def png_dpi(png: bytes) -> float:
    """The resolution a PNG declares (pHYs chunk), in dots per inch."""
    i = png.index(b"pHYs")
    x, _, unit = struct.unpack(">IIB", png[i + 4:i + 13])
    assert unit == 1  # metres
    return x * 0.0254


def assert_same(drawn, expected, what: str) -> None:
    drawn, expected = np.asarray(drawn, dtype=float), np.asarray(expected, dtype=float)
    assert drawn.shape == expected.shape, (what, drawn.shape, expected.shape)
    np.testing.assert_allclose(drawn, expected, rtol=1e-9, err_msg=what)


def svg_of(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")
    return buffer.getvalue()
