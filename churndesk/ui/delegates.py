"""Item delegates: the risk band drawn as a coloured badge."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from churndesk.ui.formatting import BAND_COLOURS
from churndesk.ui.models.customer_table import BAND_ROLE


class BandBadgeDelegate(QStyledItemDelegate):
    """Paints the band name as white text on a rounded badge in the band's colour."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        band = index.data(BAND_ROLE)
        if band not in BAND_COLOURS:
            super().paint(painter, option, index)
            return
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = option.fontMetrics
        width = metrics.horizontalAdvance(band) + 16
        height = min(option.rect.height() - 4, metrics.height() + 4)
        rect = QRectF(
            option.rect.x() + 4,
            option.rect.y() + (option.rect.height() - height) / 2,
            width,
            height,
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(BAND_COLOURS[band]))
        painter.drawRoundedRect(rect, height / 2, height / 2)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, band)
        painter.restore()
