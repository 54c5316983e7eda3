"""Administration windows in a real X server: users, audit trail, log — each only for the
roles that may see it."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox

from app.store import users
from app.store.archive import Archive
from app.ui.admin import NewUserDialog
from app.ui.main import MainWindow
from tests.gui.test_main_window import screenshot


def _window(qtbot, archive, role):
    user = users.add_user(archive.engine, f"u_{role}", role, "long enough 1", actor="test")
    win = MainWindow(archive, None, user)
    qtbot.addWidget(win)
    return win


def _tools(win) -> dict[str, bool]:
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Tools")
    return {a.text().replace("&", "").rstrip("…").strip(): a.isEnabled() for a in menu.actions() if not a.isSeparator()}


def test_menus_follow_the_role(qtbot, tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        assert _tools(_window(qtbot, archive, "reading")) == {"Query / Retrieve": True, "Film composer": True,
                                                              "Modality worklist": True, "Settings": False, "Users": False, "Audit trail": False,
                                                              "Log": False}
        assert _tools(_window(qtbot, archive, "technologist"))["Settings"] is False
        assert _tools(_window(qtbot, archive, "admin")) == {"Query / Retrieve": True, "Film composer": True,
                                                            "Modality worklist": True,
                                                            "Settings": True, "Users": True, "Audit trail": True,
                                                            "Log": False}
        assert all(_tools(_window(qtbot, archive, "service")).values())
    finally:
        archive.close()


def test_users_and_audit_windows(qtbot, tmp_path, monkeypatch):
    archive = Archive(tmp_path / "home")
    try:
        win = _window(qtbot, archive, "admin")
        win.show()
        win.open_users()
        dialog = win.users_dialog
        qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=5000)
        new = NewUserDialog(dialog)
        qtbot.addWidget(new)
        new.name.setText("rob")
        new.role.setCurrentIndex(list(users.ROLE_NAMES).index("reading"))
        new.password.setText("short")
        new.repeat.setText("short")
        new.buttons.button(QDialogButtonBox.Ok).click()
        assert "at least 8" in new.error.text()
        new.password.setText("radiology 1")
        new.repeat.setText("radiology 1")
        monkeypatch.setattr(NewUserDialog, "exec", lambda self: True)
        monkeypatch.setattr("app.ui.admin.NewUserDialog", lambda parent=None: new)
        dialog.add()  # the Add button, answered by the dialog filled in above
        qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=5000)
        roles = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(2)}
        assert roles == {"rob": "Radiologist (reading)", "u_admin": "Administrator"}
        dialog._do(lambda: users.remove_user(archive.engine, "u_admin", actor=dialog.actor), "removed")
        qtbot.waitUntil(lambda: "last administrator" in dialog.message.text(), timeout=5000)
        screenshot(dialog, "users.png")

        win.open_audit()
        audit_dialog = win.audit_dialog
        qtbot.waitUntil(lambda: audit_dialog.table.rowCount() >= 2, timeout=5000)
        actions = {audit_dialog.table.item(r, 2).text() for r in range(audit_dialog.table.rowCount())}
        assert {"user-add"} <= actions
        assert any(audit_dialog.table.item(r, 1).text() == "u_admin" for r in range(audit_dialog.table.rowCount()))
        audit_dialog.action.setCurrentText("user-add")
        audit_dialog.actor.setText("u_admin")
        audit_dialog.reload()
        qtbot.waitUntil(lambda: audit_dialog.table.rowCount() == 1, timeout=5000)
        assert audit_dialog.table.item(0, 4).text() == "rob (reading)"
        screenshot(audit_dialog, "audit.png")
    finally:
        archive.close()
