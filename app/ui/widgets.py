"""Small building blocks shared by the dialogs."""

from __future__ import annotations

from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)


def make_table(headers: list[str]) -> QTableWidget:
    """A read-only table selecting whole rows, one at a time."""
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setSelectionBehavior(QAbstractItemView.SelectRows)
    t.setSelectionMode(QAbstractItemView.SingleSelection)
    t.setEditTriggers(QAbstractItemView.NoEditTriggers)
    t.verticalHeader().hide()
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def fill_table(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            table.setItem(r, c, QTableWidgetItem(value))


def list_panel(owner: QWidget, table: QTableWidget, actions, footer: QWidget) -> dict[str, QPushButton]:
    """Lay out ``owner`` as a table, a row of buttons (label, slot) and a footer line;
    returns the buttons by label."""
    buttons, row = {}, QHBoxLayout()
    for label, slot in actions:
        b = QPushButton(label)
        b.clicked.connect(slot)
        row.addWidget(b)
        buttons[label] = b
    row.addStretch(1)
    lay = QVBoxLayout(owner)
    lay.addWidget(table)
    lay.addLayout(row)
    lay.addWidget(footer)
    return buttons
