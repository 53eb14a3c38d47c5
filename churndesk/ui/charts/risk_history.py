"""A customer's risk score over time, with band thresholds and model-version changes marked.

pyqtgraph draws thousands of points without trouble; a customer has one point per scoring run,
so no downsampling is needed here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from churndesk.services.customer_views import HistoryPoint
from churndesk.ui.formatting import BAND_COLOURS

BAND_CUTOFFS = ((40.0, "medium"), (60.0, "high"), (80.0, "critical"))


def _epoch(value: dt.datetime) -> float:
    if value.tzinfo is None:  # SQLite keeps naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


class RiskHistoryChart(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, axisItems={"bottom": pg.DateAxisItem()})
        self.setBackground("w")
        self.setMinimumHeight(160)
        self.setLabel("left", "Risk score")
        self.setYRange(0, 100, padding=0.02)
        self.setMouseEnabled(x=True, y=False)
        self.showGrid(x=False, y=True, alpha=0.2)
        for cutoff, band in BAND_CUTOFFS:
            line = pg.InfiniteLine(
                pos=cutoff,
                angle=0,
                pen=pg.mkPen(BAND_COLOURS[band], width=1, style=Qt.PenStyle.DashLine),
            )
            self.addItem(line)
        self.curve = self.plot(
            [],
            [],
            pen=pg.mkPen("#37474f", width=2),
            symbol="o",
            symbolSize=6,
            symbolBrush="#37474f",
        )
        self.model_lines: list[pg.InfiniteLine] = []
        self.empty_text = pg.TextItem("No scores yet", color="#757575", anchor=(0.5, 0.5))
        self.addItem(self.empty_text)

    def set_history(self, history: Sequence[HistoryPoint]) -> None:
        for line in self.model_lines:
            self.removeItem(line)
        self.model_lines = []
        if not history:
            self.curve.setData([], [])
            self.empty_text.setVisible(True)
            self.empty_text.setPos(0.5, 50)
            return
        self.empty_text.setVisible(False)
        x = np.array([_epoch(p.scored_at) for p in history], dtype=float)
        y = np.array([p.score for p in history], dtype=float)
        self.curve.setData(x, y)
        previous = history[0].model_version_id
        for point, at in zip(history[1:], x[1:], strict=True):
            if point.model_version_id != previous:
                line = pg.InfiniteLine(
                    pos=at,
                    angle=90,
                    pen=pg.mkPen("#1565c0", width=1, style=Qt.PenStyle.DotLine),
                    label=point.model_label,
                    labelOpts={"position": 0.92, "color": "#1565c0"},
                )
                self.addItem(line)
                self.model_lines.append(line)
                previous = point.model_version_id
        span = max(x[-1] - x[0], 86_400.0)
        self.setXRange(x[0] - span * 0.05, x[-1] + span * 0.05, padding=0)
