"""Administration windows: users (admin), the audit trail (admin), the log (service)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (QComboBox, QDateEdit, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout,
                               QInputDialog, QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QPushButton, QVBoxLayout)

from app.store import audit, users
from app.ui.background import run_in_background
from app.ui.widgets import fill_table, list_panel, make_table

_ERROR_STYLE = "color: #b00020"


class NewUserDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("New user")
        self.name = QLineEdit()
        self.full_name = QLineEdit()
        self.role = QComboBox()
        for role, label in users.ROLE_NAMES.items():
            self.role.addItem(label, role)
        self.password = QLineEdit(echoMode=QLineEdit.Password)
        self.repeat = QLineEdit(echoMode=QLineEdit.Password)
        form = QFormLayout()
        for label, w in (("User name", self.name), ("Full name", self.full_name), ("Role", self.role),
                         (f"Password (at least {users.MIN_PASSWORD} characters)", self.password),
                         ("Repeat the password", self.repeat)):
            form.addRow(label, w)
        self.error = QLabel()
        self.error.setStyleSheet(_ERROR_STYLE)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self._check)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)

    def _check(self) -> None:
        if self.password.text() != self.repeat.text():
            self.error.setText("The two passwords differ.")
            return
        try:
            users.check_password_rules(self.name.text().strip(), self.password.text())
        except users.UserError as exc:
            self.error.setText(str(exc))
            return
        self.accept()


class UsersDialog(QDialog):
    def __init__(self, engine, actor: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Users")
        self.engine, self.actor = engine, actor
        self.table = make_table(["User", "Role", "Full name", "Last login"])
        self.message = QLabel()
        self.message.setWordWrap(True)
        list_panel(self, self.table, (("Add…", self.add), ("Set password…", self.set_password),
                                      ("Change role…", self.change_role), ("Remove", self.remove)), self.message)
        self.resize(720, 420)
        self.users: list[users.User] = []
        self.reload()

    def reload(self) -> None:
        def show(found, error) -> None:
            if error is not None:
                self._say(f"The users cannot be read: {error}", error=True)
                return
            self.users = found
            fill_table(self.table, [[u.name, users.ROLE_NAMES[u.role], u.full_name or "",
                                u.last_login.strftime("%Y-%m-%d %H:%M") if u.last_login else "never"] for u in found])
        run_in_background(lambda: users.list_users(self.engine), show)

    def selected(self) -> users.User | None:
        rows = self.table.selectionModel().selectedRows()
        return self.users[rows[0].row()] if rows else None

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet(_ERROR_STYLE if error else "")
        self.message.setText(text)

    def _do(self, fn, done_text: str) -> None:
        def finished(_result, error) -> None:
            if error is not None:
                self._say(str(error), error=True)
                return
            self._say(done_text)
            self.reload()
        run_in_background(fn, finished)

    def add(self) -> None:
        dialog = NewUserDialog(self)
        if not dialog.exec():
            return
        name, role = dialog.name.text().strip(), dialog.role.currentData()
        password, full = dialog.password.text(), dialog.full_name.text().strip() or None
        self._do(lambda: users.add_user(self.engine, name, role, password, full_name=full, actor=self.actor),
                 f"Added {name}.")

    def set_password(self) -> None:
        user = self.selected()
        if user is None:
            return
        password, ok = QInputDialog.getText(self, "Set password", f"New password for {user.name}:", QLineEdit.Password)
        if ok:
            self._do(lambda: users.set_password(self.engine, user.name, password, actor=self.actor),
                     f"New password set for {user.name}; the account is unlocked.")

    def change_role(self) -> None:
        user = self.selected()
        if user is None:
            return
        labels = list(users.ROLE_NAMES.values())
        label, ok = QInputDialog.getItem(self, "Change role", f"Role of {user.name}:", labels,
                                         labels.index(users.ROLE_NAMES[user.role]), False)
        if ok:
            role = next(r for r, text in users.ROLE_NAMES.items() if text == label)
            self._do(lambda: users.set_role(self.engine, user.name, role, actor=self.actor),
                     f"{user.name} is now {label}.")

    def remove(self) -> None:
        user = self.selected()
        if user is None:
            return
        if QMessageBox.question(self, "Remove user", f"Remove the user {user.name}?") == QMessageBox.Yes:
            self._do(lambda: users.remove_user(self.engine, user.name, actor=self.actor), f"Removed {user.name}.")


class AuditDialog(QDialog):
    def __init__(self, engine, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Audit trail")
        self.engine = engine
        self.actor = QLineEdit(placeholderText="user (or os:login)")
        self.action = QComboBox(editable=True)
        self.action.addItems(["", "login", "settings", "user-add", "user-password", "user-role", "user-remove",
                              "node-add", "node-edit", "node-remove", "delete", "export", "print", "send"])
        self.patient = QLineEdit(placeholderText="patient ID or name contains")
        self.since = QDateEdit(calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.since.setDate(QDate.currentDate().addDays(-30))
        search = QPushButton("Search")
        search.clicked.connect(self.reload)
        bar = QHBoxLayout()
        for label, w in (("User", self.actor), ("Action", self.action), ("Patient", self.patient), ("Since", self.since)):
            bar.addWidget(QLabel(label))
            bar.addWidget(w)
        bar.addWidget(search)
        self.table = make_table(["When (UTC)", "Who", "Action", "Outcome", "Detail", "Patient ID", "Patient name"])
        self.count = QLabel()
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.table)
        lay.addWidget(self.count)
        self.resize(1100, 600)
        self.reload()

    def reload(self) -> None:
        d = self.since.date().toPython()
        since = datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
        actor, action, patient = self.actor.text().strip() or None, self.action.currentText().strip() or None, \
            self.patient.text().strip() or None

        def show(rows, error) -> None:
            if error is not None:
                self.count.setText(f"The audit trail cannot be read: {error}")
                return
            fill_table(self.table, [[r["at"].strftime("%Y-%m-%d %H:%M:%S") if r["at"] else "", r["actor"], r["action"],
                                r["outcome"], r["detail"] or "", r["patient_id"] or "", r["patient_name"] or ""]
                               for r in rows])
            self.count.setText(f"{len(rows)} entries (newest first)")
        run_in_background(lambda: audit.search(self.engine, actor=actor, action=action, since=since,
                                                patient=patient), show)


class LogDialog(QDialog):
    """The application log, for service technicians."""

    TAIL = 2 * 2**20

    def __init__(self, log_file: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Log — {log_file}")
        self.log_file = log_file
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setLineWrapMode(QPlainTextEdit.NoWrap)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.reload)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(refresh, alignment=Qt.AlignLeft)
        self.resize(1100, 650)
        self.reload()

    def reload(self) -> None:
        path = self.log_file

        def read() -> str:
            if not path.exists():
                return f"(no log yet at {path})"
            with path.open("rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - self.TAIL))
                return f.read().decode("utf-8", errors="replace")

        def show(text, error) -> None:
            self.text.setPlainText(text if error is None else f"The log cannot be read: {error}")
            self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())
        run_in_background(read, show)
