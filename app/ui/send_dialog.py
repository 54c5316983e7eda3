""""Send to…": choose a remote node for the selected studies; a send job does the rest
(app.jobs.send_job) and the jobs panel shows it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem,
                               QVBoxLayout)

from app.dicom import formatting as text


class SendDialog(QDialog):
    """Lists the configured nodes that take storage; ``chosen()`` is the node picked."""

    def __init__(self, nodes: list, studies: list[dict], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Send to")
        self.nodes = [n for n in nodes if "store" in n.roles]
        layout = QVBoxLayout(self)
        what = "\n".join(f"• {text.person_name(r.get('PatientName')) or '?'} ({r.get('PatientID') or '?'}), "
                         f"{text.date(r.get('StudyDate')) if r.get('StudyDate') else ''} {r.get('StudyDescription') or ''}".rstrip()
                         for r in studies[:8])
        if len(studies) > 8:
            what += f"\n… and {len(studies) - 8} more"
        intro = QLabel(f"Send {len(studies)} stud{'y' if len(studies) == 1 else 'ies'}:\n{what}")
        intro.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(intro)
        layout.addWidget(QLabel("to:"))
        self.list = QListWidget()
        for node in self.nodes:
            item = QListWidgetItem(f"{node.name} — {node.aet}@{node.host}:{node.port}"
                                   + ("  (TLS)" if node.tls else ""))
            item.setData(Qt.UserRole, node.name)
            self.list.addItem(item)
        layout.addWidget(self.list)
        self.empty = QLabel("No remote node takes storage yet. Add one in Tools → Settings → Remote nodes "
                            "(with the 'store' role).")
        self.empty.setWordWrap(True)
        self.empty.setVisible(not self.nodes)
        layout.addWidget(self.empty)
        self.commit = QCheckBox("Then ask it to commit to keep them (storage commitment)")
        self.commit.setToolTip("Only a committed study may be removed here by the disk watermark; the 'Archived' "
                               "column of the browser shows the answer.")
        layout.addWidget(self.commit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setText("Send")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.list.currentRowChanged.connect(lambda _: self._update())
        self.list.itemDoubleClicked.connect(lambda _: self.accept())
        if self.nodes:
            self.list.setCurrentRow(0)
        self._update()
        self.resize(460, 360)

    def _update(self) -> None:
        node = self.chosen()
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(node is not None)
        can_commit = node is not None and "commit" in node.roles
        self.commit.setEnabled(can_commit)
        self.commit.setChecked(can_commit)  # a node that offers commitment is asked by default

    def chosen(self):
        item = self.list.currentItem()
        if item is None:
            return None
        return next((n for n in self.nodes if n.name == item.data(Qt.UserRole)), None)
