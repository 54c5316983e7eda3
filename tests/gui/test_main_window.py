"""The placeholder main window in a real X server: the node runs in background threads
and what it receives shows up."""

from pathlib import Path

from pydicom.data import get_testdata_file

from app.net.node import Node
from app.store.archive import Archive
from app.ui.main import MainWindow
from tests.conftest import free_port, run_dcmtk


def test_window_shows_node_and_received_studies(qtbot, tmp_path):
    archive = Archive(tmp_path / "home")
    archive.settings.set("policy.check_calling_ae", "false")
    port = free_port()
    node = Node(archive, aet="LIGHTBOX", port=port, host="127.0.0.1")
    win = MainWindow(archive, node)
    qtbot.addWidget(win)
    win.start_node()
    win.show()
    qtbot.waitExposed(win)
    assert f"127.0.0.1:{port}" in win.status.text()
    assert win.count.text().startswith("0 studies")
    try:
        assert run_dcmtk("storescu", "-aec", "LIGHTBOX", "127.0.0.1", str(port),
                         get_testdata_file("CT_small.dcm")).returncode == 0
        qtbot.waitUntil(lambda: win.count.text().startswith("1 study "), timeout=3000)
        shot = win.screen().grabWindow(win.winId())
        out = Path(tmp_path / "main_window.png")
        assert shot.save(str(out)) and out.stat().st_size > 0
    finally:
        node.stop(grace=1)
        archive.close()
