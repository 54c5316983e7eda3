"""The settings dialog in a real X server: local settings validated, saved, audited and
applied without a restart; remote nodes added from a template and echoed against a real
DCMTK storescp and against a closed port."""

from __future__ import annotations

import socket
import subprocess

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from app.net.node import Node
from app.store import audit, nodes, users
from app.store.archive import Archive
from app.ui.main import MainWindow
from app.ui.settings_dialog import NodeEditor
from tests.conftest import dcmtk, free_port, wait_port
from tests.gui.test_main_window import screenshot


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "home")
    a.settings.set("policy.check_calling_ae", "false")
    yield a
    a.close()


@pytest.fixture
def storescp(tmp_path):
    port = free_port()
    out = tmp_path / "scp"
    out.mkdir()
    proc = subprocess.Popen([dcmtk("storescp"), "-aet", "STORESCP", "-od", str(out), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _admin_window(qtbot, archive, node=None):
    admin = users.add_user(archive.engine, "alice", "admin", "correct horse", actor="test")
    win = MainWindow(archive, node, admin)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.open_settings()
    dialog = win.settings_dialog
    qtbot.waitExposed(dialog)
    return win, dialog


def test_local_settings_validated_saved_audited_and_applied(qtbot, archive):
    port = free_port()
    node = Node(archive, host="127.0.0.1")  # AE title and port from the settings, as in the application
    archive.settings.set("node.port", str(port))
    archive.settings.set("node.aet", "LIGHTBOX")
    win, dialog = _admin_window(qtbot, archive, node)
    win.start_node()
    try:
        assert f":{port}" in win.node_state.text()
        fields = dialog.local.fields
        fields["node.aet"].widget.setText("WAY_TOO_LONG_AE_TITLE")
        dialog.buttons.button(QDialogButtonBox.Apply).click()
        assert "not valid" in dialog.message.text()
        assert "AE title" in fields["node.aet"].error.text() and fields["node.aet"].error.isVisible()
        assert archive.settings["node.aet"] != "WAY_TOO_LONG_AE_TITLE"
        screenshot(dialog, "settings_local_error.png")

        new_port = free_port()
        fields["node.aet"].widget.setText("READING1")
        fields["node.port"].widget.setValue(new_port)
        fields["node.max_associations"].widget.setValue(20)
        fields["timeouts.move_response"].widget.setValue(5)  # fixed by the spec: the field refuses
        assert not fields["timeouts.move_response"].widget.isEnabled()
        dialog.buttons.button(QDialogButtonBox.Apply).click()
        assert "Saved 3 setting(s)" in dialog.message.text()
        saved = (archive.home / "settings.toml").read_text()
        assert 'aet = "READING1"' in saved and f"port = {new_port}" in saved and "max_associations = 20" in saved
        # applied without restarting the application: the listener moved to the new port
        qtbot.waitUntil(lambda: f"READING1 on 127.0.0.1:{new_port}" in win.node_state.text(), timeout=15000)
        with socket.create_connection(("127.0.0.1", new_port), timeout=2):
            pass
        qtbot.waitUntil(lambda: any(r["detail"] == "node.max_associations = 20"
                                    for r in audit.search(archive.engine, actor="alice")), timeout=5000)
    finally:
        node.stop(grace=1)


def test_remote_node_from_template_and_echo(qtbot, archive, storescp, monkeypatch):
    win, dialog = _admin_window(qtbot, archive)
    dialog.tabs.setCurrentWidget(dialog.remote)

    editor = NodeEditor(None, dialog)
    qtbot.addWidget(editor)
    editor.template.setCurrentText("DCMTK storescp")
    assert editor.aet.text() == "STORESCP" and editor.roles["store"].isChecked()
    editor.name.setText("scp")
    editor.host.setText("no-such-host.invalid")
    editor.port.setValue(storescp)
    editor.buttons.button(QDialogButtonBox.Ok).click()
    qtbot.waitUntil(lambda: "cannot be found" in editor.error.text(), timeout=10000)
    editor.host.setText("127.0.0.1")
    editor.class_syntaxes.setText("CTImage=rle")
    editor.buttons.button(QDialogButtonBox.Ok).click()
    qtbot.waitUntil(lambda: "unknown SOP class 'CTImage'" in editor.error.text(), timeout=10000)
    editor.syntaxes.setText("jpeg-lossless, !jpeg-baseline, explicit")
    editor.class_syntaxes.setText("CTImageStorage=rle,explicit")
    editor.pack.setCurrentIndex(editor.pack.findData("sr"))
    editor.show()
    screenshot(editor, "settings_node_editor.png")
    with qtbot.waitSignal(editor.accepted, timeout=10000):
        editor.buttons.button(QDialogButtonBox.Ok).click()
    with qtbot.waitSignal(dialog.remote.changed, timeout=10000):
        dialog.remote._save(editor.result_node, replace=False)
    saved = nodes.get_node(archive.engine, "scp")
    assert saved.aet == "STORESCP" and saved.pack == "sr"
    assert saved.send_syntaxes("1.2.840.10008.5.1.4.1.1.2") == (("1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1"),
                                                               frozenset())
    assert saved.send_syntaxes("1.2.840.10008.5.1.4.1.1.4") == (("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1"),
                                                               frozenset({"1.2.840.10008.1.2.4.50"}))
    reopened = NodeEditor(saved, dialog)
    qtbot.addWidget(reopened)
    assert reopened.syntaxes.text() == "jpeg-lossless,!jpeg-baseline,explicit"
    assert reopened.class_syntaxes.text() == "CTImageStorage=rle,explicit" and reopened.pack.currentData() == "sr"
    qtbot.waitUntil(lambda: dialog.remote.table.rowCount() == 1, timeout=5000)

    dialog.remote.table.selectRow(0)
    dialog.remote.echo()
    qtbot.waitUntil(lambda: "success" in dialog.remote.echo_result.text(), timeout=15000)
    assert f"STORESCP@127.0.0.1:{storescp}" in dialog.remote.echo_result.text()
    screenshot(dialog, "settings_remote_echo.png")

    closed = free_port()
    nodes.add_node(archive.engine, nodes.RemoteNode("gone", "GONE", "127.0.0.1", closed, ("echo",)))
    dialog.remote.reload()
    qtbot.waitUntil(lambda: dialog.remote.table.rowCount() == 2, timeout=5000)
    dialog.remote.table.selectRow(0)  # sorted by name: 'gone' first
    dialog.remote.echo()
    qtbot.waitUntil(lambda: "cannot connect" in dialog.remote.echo_result.text(), timeout=15000)
    assert "is it running and reachable" in dialog.remote.echo_result.text()


def test_settings_are_for_administrators_only(qtbot, archive, monkeypatch):
    rita = users.add_user(archive.engine, "rita", "reading", "radiology 1", actor="test")
    win = MainWindow(archive, None, rita)
    qtbot.addWidget(win)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    win.open_settings()
    assert shown and "administrators" in shown[0]
    assert not hasattr(win, "settings_dialog")


def test_routing_rules_are_made_and_removed_in_the_settings(qtbot, archive):
    """The Routing tab lists, adds (to nodes that take storage) and removes auto-archive
    rules, the same ones 'lightbox routes' shows; each change is audited."""
    from app.jobs import router
    from app.ui.settings_dialog import RouteEditor, SettingsDialog
    nodes.add_node(archive.engine, nodes.RemoteNode("PACS", "PACS", "127.0.0.1", 104, ("echo", "store", "commit")))
    nodes.add_node(archive.engine, nodes.RemoteNode("RIS", "RIS", "127.0.0.1", 105, ("worklist",)))
    dialog = SettingsDialog(archive, "admin")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.tabs.setCurrentWidget(dialog.routing)
    editor = RouteEditor(["PACS"])
    qtbot.addWidget(editor)
    editor._accept()
    assert editor.result_route is None and "needs a name" in editor.error.text()
    editor.name.setText("CT-ARCHIVE")
    editor.from_aet.setText("CT01")
    editor.modality.setText("ct")
    editor._accept()
    route = editor.result_route
    assert (route.to_node, route.from_aet, route.modality, route.commit) == ("PACS", "CT01", "CT", True)
    dialog.routing.save(route)
    qtbot.waitUntil(lambda: dialog.routing.table.rowCount() == 1, timeout=5000)
    assert [dialog.routing.table.item(0, c).text() for c in range(5)] == ["CT-ARCHIVE", "PACS", "CT01", "CT", "yes"]
    assert [r.name for r in router.list_routes(archive.engine)] == ["CT-ARCHIVE"]
    screenshot(dialog, "settings_routing.png")
    dialog.routing.table.selectRow(0)
    dialog.routing.remove()
    qtbot.waitUntil(lambda: dialog.routing.table.rowCount() == 0, timeout=5000)
    assert router.list_routes(archive.engine) == []
    assert [(e["actor"], e["detail"]) for e in audit.search(archive.engine, action="route-add")] == \
        [("admin", "CT-ARCHIVE: to PACS")]
    assert [e["detail"] for e in audit.search(archive.engine, action="route-remove")] == ["CT-ARCHIVE"]
