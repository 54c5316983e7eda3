"""Login (spec §7.3) and, on the first run, the first administrator account.

Checking a password takes a few tenths of a second (scrypt): it runs on a worker thread
so the window stays responsive."""

from __future__ import annotations

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout)

from app.store import users
from app.ui.background import run_in_background


class _Dialog(QDialog):
    def __init__(self, title: str, intro: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.user: users.User | None = None
        self.form = QFormLayout()
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        head = QLabel(intro)
        head.setWordWrap(True)
        lay.addWidget(head)
        lay.addLayout(self.form)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)

    def _run(self, fn) -> None:
        self.error.clear()
        self.buttons.setEnabled(False)
        run_in_background(fn, self._finished)

    def _finished(self, user, error) -> None:
        self.buttons.setEnabled(True)
        if error is not None:
            self.error.setText(str(error) if isinstance(error, users.UserError)
                               else f"Could not check the password: {error}")
            return
        self.user = user
        self.accept()

    def _submit(self) -> None:
        raise NotImplementedError


class LoginDialog(_Dialog):
    def __init__(self, engine, parent=None):
        super().__init__("Lightbox — log in", "Log in with your own user name and password.", parent)
        self.engine = engine
        self.name = QLineEdit()
        self.password = QLineEdit(echoMode=QLineEdit.Password)
        self.form.addRow("User name", self.name)
        self.form.addRow("Password", self.password)

    def _submit(self) -> None:
        name, password = self.name.text().strip(), self.password.text()
        if not name or not password:
            self.error.setText("Enter your user name and password.")
            return
        engine = self.engine
        self.password.clear()
        self._run(lambda: users.login(engine, name, password))


class FirstAdminDialog(_Dialog):
    def __init__(self, engine, parent=None):
        super().__init__("Lightbox — first start",
                         "Nobody can log in yet. Create the first administrator account; it can then add "
                         "the other users (also with 'lightbox users add').", parent)
        self.engine = engine
        self.name = QLineEdit()
        self.full_name = QLineEdit()
        self.password = QLineEdit(echoMode=QLineEdit.Password)
        self.repeat = QLineEdit(echoMode=QLineEdit.Password)
        self.form.addRow("User name", self.name)
        self.form.addRow("Full name", self.full_name)
        self.form.addRow(f"Password (at least {users.MIN_PASSWORD} characters)", self.password)
        self.form.addRow("Repeat the password", self.repeat)

    def _submit(self) -> None:
        name, password = self.name.text().strip(), self.password.text()
        if password != self.repeat.text():
            self.error.setText("The two passwords differ.")
            return
        engine, full = self.engine, self.full_name.text().strip() or None
        actor = users.os_actor()

        def create():
            users.add_user(engine, name, "admin", password, full_name=full, actor=actor)
            return users.login(engine, name, password)
        self._run(create)
