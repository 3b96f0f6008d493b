"""A small line plot of the training loss per step, drawn with QPainter (QtCharts is not part
of PySide6-Essentials): axes with round-number ticks and labels, the loss as a line, the
latest point marked, the x axis sized to the run's steps so the curve grows into it."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QWidget


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round-number ticks (1, 2, 2.5 or 5 × a power of ten) covering ``low``..``high``."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.1e}"


class LossPlot(QWidget):
    """Loss against step. :meth:`reset` with the run's step count, then :meth:`add` per step."""

    MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_RIGHT = 46, 34, 12, 14

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.losses: list[float] = []
        self.steps = 0
        self.setMinimumSize(320, 180)
        self.setAccessibleName("Training loss per step")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(480, 220)

    def reset(self, steps: int = 0) -> None:
        self.losses, self.steps = [], steps
        self.update()

    def add(self, loss: float) -> None:
        if math.isfinite(loss):
            self.losses.append(float(loss))
            self.update()

    def plot_rect(self) -> QRectF:
        return QRectF(self.MARGIN_LEFT, self.MARGIN_TOP,
                      max(1, self.width() - self.MARGIN_LEFT - self.MARGIN_RIGHT),
                      max(1, self.height() - self.MARGIN_TOP - self.MARGIN_BOTTOM))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        grid = QColor(text)
        grid.setAlpha(40)
        painter.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        area = self.plot_rect()
        x_max = max(self.steps, len(self.losses), 1)
        y_top = max(self.losses) if self.losses else 1.0
        y_ticks = nice_ticks(0.0, y_top * 1.05 or 1.0, 4)
        x_ticks = [t for t in nice_ticks(0, x_max, 5) if t == int(t)]
        y_max, x_end = y_ticks[-1], max(x_ticks[-1], x_max)

        def point(step: float, loss: float) -> QPointF:
            return QPointF(area.left() + area.width() * step / x_end,
                           area.bottom() - area.height() * loss / y_max)

        metrics = painter.fontMetrics()
        painter.setPen(QPen(grid, 1))
        for y in y_ticks:
            p = point(0, y)
            painter.drawLine(QPointF(area.left(), p.y()), QPointF(area.right(), p.y()))
        painter.setPen(QPen(text, 1))
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        painter.drawLine(area.bottomLeft(), area.topLeft())
        for y in y_ticks:
            p = point(0, y)
            painter.drawLine(QPointF(area.left() - 4, p.y()), QPointF(area.left(), p.y()))
            label = _label(y)
            painter.drawText(QPointF(area.left() - 7 - metrics.horizontalAdvance(label),
                                     p.y() + metrics.ascent() / 2 - 1), label)
        for x in x_ticks:
            p = point(x, 0)
            painter.drawLine(QPointF(p.x(), area.bottom()), QPointF(p.x(), area.bottom() + 4))
            label = str(int(x))
            painter.drawText(QPointF(p.x() - metrics.horizontalAdvance(label) / 2,
                                     area.bottom() + 6 + metrics.ascent()), label)
        painter.drawText(QRectF(area.left(), self.height() - metrics.height() - 1,
                                area.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignHCenter, "step")
        painter.save()
        painter.translate(12, area.center().y())
        painter.rotate(-90)
        painter.drawText(QPointF(-metrics.horizontalAdvance("loss") / 2, 0), "loss")
        painter.restore()
        if not self.losses:
            muted = QColor(text)
            muted.setAlpha(140)
            painter.setPen(QPen(muted, 1))
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "the loss appears here")
            return
        line = QColor(pal.color(QPalette.ColorRole.Highlight))
        path = QPainterPath(point(1, self.losses[0]))
        for i, loss in enumerate(self.losses[1:], start=2):
            path.lineTo(point(i, loss))
        painter.setPen(QPen(line, 2))
        painter.drawPath(path)
        painter.setBrush(line)
        last = point(len(self.losses), self.losses[-1])
        painter.drawEllipse(last, 3.5, 3.5)
        value = f"{self.losses[-1]:.3f}"
        painter.setPen(QPen(text, 1))
        painter.drawText(QPointF(min(last.x() + 6, area.right() - metrics.horizontalAdvance(
            value)), max(last.y() - 6, area.top() + metrics.ascent())), value)
