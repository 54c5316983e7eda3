"""Settings (admin and service only): the local node and the remote nodes.

The local node's form is built from the settings table (app.config.SETTINGS): every
parameter of spec Table 4-53 and the rest, with its help text, range and choices, so the
dialog and the settings file can never disagree. Changes are validated by the same code
as 'lightbox config set', written to the settings file, audited, and applied without a
restart (the node re-reads settings per association; a changed address or TLS setup
restarts only its listeners). Remote nodes: add from a template, edit, remove, Echo.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QListWidget, QListWidgetItem,
                               QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton,
                               QScrollArea, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from app.config import SETTINGS, Setting, SettingsError, check_aet, parse_value
from app.net import verification
from app.store import audit, nodes
from app.ui.background import run_in_background
from app.ui.widgets import fill_table, list_panel, make_table

SECTIONS = {"node": "Local node", "timeouts": "Timeouts (spec Table 4-53)", "policy": "Acceptance policy",
            "storage": "Storage", "viewer": "Viewer", "tls": "Secure transport (TLS)", "services": "Own AE title / port per service"}
# Changing these needs the listeners restarted (the rest is read per association).
LISTENER_KEYS = ("node.aet", "node.host", "node.port", "tls.", "services.")
_FILE_KEYS = {"tls.certificate", "tls.private_key", "tls.ca_file"}
_ERROR_STYLE = "color: #b00020"


def _needs_listener_restart(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in LISTENER_KEYS)


class _Field:
    """One setting's editor."""

    def __init__(self, spec: Setting, value, parent: QWidget):
        self.spec = spec
        kind = type(spec.default) if spec.default is not None else str
        if spec.choices:
            self.widget = QComboBox(parent)
            self.widget.addItems(spec.choices)
            self.widget.setCurrentText(str(value))
        elif kind is bool:
            self.widget = QCheckBox(parent)
            self.widget.setChecked(bool(value))
        elif kind is int:
            self.widget = QSpinBox(parent)
            self.widget.setRange(spec.minimum if spec.minimum is not None else -2**31,
                                 spec.maximum if spec.maximum is not None else 2**31 - 1)
            self.widget.setValue(int(value))
            self.widget.setEnabled(spec.minimum != spec.maximum)  # fixed by the spec (C-MOVE 1200 s)
        else:
            self.widget = QLineEdit(str(value or ""), parent)
        self.widget.setToolTip(spec.help)
        self.error = QLabel(parent)
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.hide()

    def raw(self):
        w = self.widget
        if isinstance(w, QComboBox):
            return w.currentText()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return w.value()
        return w.text().strip()

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))


class LocalNodeTab(QScrollArea):
    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.fields: dict[str, _Field] = {}
        body = QWidget()
        lay = QVBoxLayout(body)
        groups: dict[str, QFormLayout] = {}
        for spec in SETTINGS:
            section = spec.key.split(".")[0]
            if section not in groups:
                box = QGroupBox(SECTIONS.get(section, section))
                groups[section] = QFormLayout(box)
                lay.addWidget(box)
            field = _Field(spec, settings.get(spec.key), body)
            self.fields[spec.key] = field
            row = QWidget()
            row_lay = QHBoxLayout(row)
            row_lay.setContentsMargins(0, 0, 0, 0)
            row_lay.addWidget(field.widget, 1)
            if spec.key in _FILE_KEYS:
                browse = QPushButton("Choose…")
                browse.clicked.connect(lambda _=False, f=field: self._choose_file(f))
                row_lay.addWidget(browse)
            hint = QLabel(spec.help)
            hint.setStyleSheet("color: #666")
            row_lay.addWidget(hint, 2)
            groups[section].addRow(spec.key.split(".", 1)[1], row)
            groups[section].addRow("", field.error)
        lay.addStretch(1)
        self.setWidget(body)
        self.setWidgetResizable(True)

    def _choose_file(self, field: _Field) -> None:
        path, _ = QFileDialog.getOpenFileName(self, field.spec.help, "", "PEM files (*.pem *.crt *.key);;All files (*)")
        if path:
            field.widget.setText(path)

    def changes(self) -> tuple[dict, dict]:
        """({key: value} changed and valid, {key: error})."""
        changed, errors = {}, {}
        for key, field in self.fields.items():
            raw = field.raw()
            current = self.settings.get(key)
            if raw == current or (raw == "" and current in (None, "")):
                field.show_error(None)
                continue
            try:
                value = parse_value(key, raw) if not (key.endswith(".aet") and raw == "") else ""
                if key in _FILE_KEYS and value and not Path(value).is_file():
                    raise SettingsError(f"{value} is not a readable file")
            except SettingsError as exc:
                errors[key] = str(exc)
                field.show_error(str(exc))
                continue
            field.show_error(None)
            changed[key] = value
        return changed, errors


class NodeEditor(QDialog):
    """Add or edit one remote node, optionally from a template."""

    def __init__(self, node: nodes.RemoteNode | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Remote node" if node else "New remote node")
        self.result_node: nodes.RemoteNode | None = None
        self.original = node
        form = QFormLayout()
        self.template = QComboBox()
        self.template.addItem("(none)")
        self._templates = nodes.templates()
        self.template.addItems([t.name for t in self._templates])
        self.template.currentIndexChanged.connect(self._apply_template)
        if node is None:
            form.addRow("Template", self.template)
        self.name = QLineEdit(node.name if node else "")
        self.name.setReadOnly(node is not None)
        self.aet = QLineEdit(node.aet if node else "")
        self.aet.setMaxLength(16)
        self.host = QLineEdit(node.host if node else "")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(node.port if node else 104)
        self.roles = {r: QCheckBox(r) for r in nodes.ROLES}
        roles_box = QWidget()
        grid = QGridLayout(roles_box)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, (role, box) in enumerate(self.roles.items()):
            box.setChecked(role in (node.roles if node else ("echo", "store")))
            grid.addWidget(box, i // 4, i % 4)
        self.tls = QCheckBox("talk to this node over TLS")
        self.tls.setChecked(bool(node and node.tls))
        self.cert_path = QLineEdit()
        self.cert_path.setPlaceholderText("its certificate (PEM) to pin; empty: trust tls.ca_file")
        cert_button = QPushButton("Choose…")
        cert_button.clicked.connect(self._choose_cert)
        cert_row = QWidget()
        cr = QHBoxLayout(cert_row)
        cr.setContentsMargins(0, 0, 0, 0)
        cr.addWidget(self.cert_path, 1)
        cr.addWidget(cert_button)
        self.pin = QLabel(node.cert_sha256 if node and node.cert_sha256 else "—")
        self.pin.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.comment = QLineEdit(node.comment if node and node.comment else "")
        from app.dicom.transfer_syntaxes import SYNTAX_NAMES
        self.syntaxes = QLineEdit(nodes.syntaxes_as_text(node.transfer_syntaxes if node else ()))
        self.syntaxes.setPlaceholderText("as stored (else uncompressed)")
        self.syntaxes.setToolTip("Transfer syntaxes to send in, preferred first (spec §4.2.1.3.1.2): "
                                 + ", ".join(SYNTAX_NAMES) + ". '!' before one excludes it (an image stored so is "
                                 "decompressed). Compression only where the image meets the reference's criteria; "
                                 "lossy only when the node takes nothing lossless.")
        self.class_syntaxes = QLineEdit(nodes.class_syntaxes_as_text(node.class_syntaxes if node else ()))
        self.class_syntaxes.setPlaceholderText("e.g. CTImageStorage=j2k-lossless,explicit; "
                                               "MRImageStorage=!jpeg-baseline")
        self.class_syntaxes.setToolTip("Per SOP class (DICOM keyword or UID), a list that replaces 'Send in' for "
                                       "that class; rules separated by ';'.")
        self.pack = QComboBox()
        for value, text in (("", "no: such objects fail"), ("sr", "into Basic Text SR"),
                            ("sc", "into Secondary Capture (for archives without SR)")):
            self.pack.addItem(text, value)
        self.pack.setCurrentIndex(max(0, self.pack.findData(node.pack if node else "")))
        self.pack.setToolTip("Spec §4.2.1.3.1.4: PDF, SR, segmentation, registration, raw data ... (Table 4-8) "
                             "the node does not accept are packed so it can archive them; Lightbox unpacks them "
                             "when they come back.")
        for label, w in (("Name", self.name), ("AE title", self.aet), ("Host", self.host), ("Port", self.port),
                         ("Services", roles_box), ("TLS", self.tls), ("Certificate", cert_row),
                         ("Pinned SHA-256", self.pin), ("Send in", self.syntaxes),
                         ("Per SOP class", self.class_syntaxes), ("Pack classes it lacks", self.pack),
                         ("Comment", self.comment)):
            form.addRow(label, w)
        self.printer = PrinterBox(node.printer if node else nodes.PrinterSetup())
        self.printer.setVisible(self.roles["print"].isChecked())
        self.roles["print"].toggled.connect(self.printer.setVisible)
        form.addRow(self.printer)
        self.error = QLabel()
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)

    def _apply_template(self) -> None:
        i = self.template.currentIndex() - 1
        if i < 0:
            return
        t = self._templates[i]
        if not self.name.text():
            self.name.setText(t.name.split()[0].lower())
        self.aet.setText(t.aet)
        self.port.setValue(t.port)
        for role, box in self.roles.items():
            box.setChecked(role in t.roles)
        self.comment.setText(t.comment)

    def _choose_cert(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The node's certificate", "", "PEM (*.pem *.crt);;All files (*)")
        if path:
            self.cert_path.setText(path)

    def _entered(self) -> dict:
        return {"name": self.name.text().strip(), "aet": self.aet.text().strip(), "host": self.host.text().strip(),
                "port": self.port.value(), "roles": tuple(r for r, box in self.roles.items() if box.isChecked()),
                "tls": self.tls.isChecked(), "cert_path": self.cert_path.text().strip(),
                "comment": self.comment.text().strip() or None, "syntaxes": self.syntaxes.text().strip(),
                "class_syntaxes": self.class_syntaxes.text().strip(), "pack": self.pack.currentData(),
                "printer": self.printer.entered()}

    def _validate(self, v: dict) -> nodes.RemoteNode:
        """The node as entered (runs off the GUI thread: it resolves the host name);
        SettingsError with a message for the user if it is not valid."""
        if not v["name"]:
            raise SettingsError("Give the node a name (how it appears in Send to and Query).")
        check_aet(v["aet"])
        if why := nodes.check_host(v["host"]):
            raise SettingsError(why[0].upper() + why[1:] + ".")
        cert = self.original.certificate if self.original else None
        if v["cert_path"]:
            try:
                cert = Path(v["cert_path"]).read_bytes()
            except OSError as exc:
                raise SettingsError(f"Cannot read the certificate file: {exc.strerror or exc}") from None
        return nodes.RemoteNode(v["name"], v["aet"], v["host"], v["port"], v["roles"], v["tls"], cert, None,
                                v["comment"], nodes.syntaxes_from_text(v.get("syntaxes", "")),
                                nodes.class_syntaxes_from_text(v.get("class_syntaxes", "")), v.get("pack", ""),
                                v.get("printer", nodes.PrinterSetup()).check())

    def _accept(self) -> None:
        try:
            entered = self._entered()
        except SettingsError as exc:
            self.error.setText(str(exc))
            return
        self.buttons.setEnabled(False)
        self.error.setText("Checking …")

        def done(node, error) -> None:
            self.buttons.setEnabled(True)
            if error is not None:
                self.error.setText(str(error))
                return
            self.result_node = node
            self.accept()
        run_in_background(lambda: self._validate(entered), done)


class PrinterBox(QGroupBox):
    """What a film printer takes (spec §4.2.1.3.7.3): the composer offers only these."""

    def __init__(self, setup: nodes.PrinterSetup, parent=None):
        super().__init__("Film printer", parent)
        from app.film.compose import film_sizes
        self.sizes = _checklist(list(film_sizes()), setup.film_sizes)
        self.mediums = _checklist(list(nodes.MEDIUMS), setup.mediums)
        self.layouts = QLineEdit(", ".join(setup.layouts))
        self.layouts.setToolTip("Rows x columns the composer offers first, e.g. 1x1, 2x2, 4x5; any other can "
                                "be entered in the composer.")
        self.dpi = QSpinBox()
        self.dpi.setRange(50, 1200)
        self.dpi.setSuffix(" DPI")
        self.dpi.setValue(setup.dpi)
        self.dpi.setToolTip("The printer's resolution: films are composed at it, one page pixel per printer pixel.")
        self.bits = QComboBox()
        self.bits.addItems(["12", "8"])
        self.bits.setCurrentText(str(setup.bits))
        self.plut = QCheckBox("takes a Presentation LUT (IDENTITY, spec Table 4-38)")
        self.plut.setChecked(setup.presentation_lut)
        self.color = QCheckBox("prints colour (Basic Color Print Management)")
        self.color.setChecked(setup.color)
        self.magnification = QComboBox()
        self.magnification.addItems(list(nodes.MAGNIFICATIONS))
        self.magnification.setCurrentText(setup.magnification)
        self.border = QComboBox()
        for value, text in (("", "printer's default"), ("BLACK", "black"), ("WHITE", "white")):
            self.border.addItem(text, value)
        self.border.setCurrentIndex(max(0, self.border.findData(setup.border_density)))
        self._densities = (setup.min_density, setup.max_density)
        form = QFormLayout(self)
        for label, w in (("Film sizes", self.sizes), ("Layouts", self.layouts), ("Resolution", self.dpi),
                         ("Bits per pixel", self.bits), ("Medium types", self.mediums), ("", self.plut),
                         ("", self.color), ("Magnification", self.magnification), ("Border", self.border)):
            form.addRow(label, w)

    def entered(self) -> nodes.PrinterSetup:
        from app.film.compose import FilmError, parse_layout
        layouts = tuple(t.strip().lower() for t in self.layouts.text().split(",") if t.strip())
        try:
            for layout in layouts:
                parse_layout(layout)
        except FilmError as exc:
            raise SettingsError(f"Printer layouts: {exc}") from None
        return nodes.PrinterSetup(_checked(self.sizes), layouts or nodes.PrinterSetup().layouts, self.dpi.value(),
                                  int(self.bits.currentText()), self.plut.isChecked(), self.color.isChecked(),
                                  _checked(self.mediums), self.magnification.currentText(),
                                  self.border.currentData(), *self._densities)


def _checklist(items: list[str], checked) -> QListWidget:
    box = QListWidget()
    for text in items:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
        item.setCheckState(Qt.Checked if text in checked else Qt.Unchecked)
        box.addItem(item)
    box.setFlow(QListWidget.LeftToRight)
    box.setWrapping(True)
    box.setFixedHeight(56)
    return box


def _checked(box: QListWidget) -> tuple[str, ...]:
    return tuple(box.item(i).text() for i in range(box.count()) if box.item(i).checkState() == Qt.Checked)


class RemoteNodesTab(QWidget):
    changed = Signal()

    def __init__(self, archive, actor: str, parent=None):
        super().__init__(parent)
        self.archive, self.actor = archive, actor
        self.table = make_table(["Name", "AE title", "Address", "TLS", "Services", "Comment"])
        self.table.doubleClicked.connect(lambda *_: self.edit())
        self.echo_result = QLabel()
        self.echo_result.setWordWrap(True)
        buttons = list_panel(self, self.table, (("Add…", self.add), ("Edit…", self.edit), ("Remove", self.remove),
                                                ("Echo", self.echo)), self.echo_result)
        self.echo_button = buttons["Echo"]
        self.nodes: list[nodes.RemoteNode] = []
        self.reload()

    def reload(self) -> None:
        def show(found, error) -> None:
            if error is not None:
                self.echo_result.setText(f"The remote nodes cannot be read: {error}")
                return
            self.nodes = found
            fill_table(self.table, [[n.name, n.aet, f"{n.host}:{n.port}",
                                     ("pinned" if n.cert_sha256 else "CA") if n.tls else "", ", ".join(n.roles),
                                     n.comment or ""] for n in found])
        run_in_background(lambda: nodes.list_nodes(self.archive.engine), show)

    def selected(self) -> nodes.RemoteNode | None:
        rows = self.table.selectionModel().selectedRows()
        return self.nodes[rows[0].row()] if rows else None

    def _save(self, node: nodes.RemoteNode, replace: bool) -> None:
        engine, actor = self.archive.engine, self.actor

        def save():
            saved = nodes.add_node(engine, node, replace=replace)
            audit.log(engine, actor, "node-edit" if replace else "node-add",
                      f"{saved.name}: {saved.aet}@{saved.host}:{saved.port}")
            return saved

        def done(saved, error) -> None:
            if error is not None:
                QMessageBox.warning(self, "Remote node not saved", str(error))
                return
            self.echo_result.setText(f"Saved {saved.name}. It takes effect for the next association.")
            self.reload()
            self.changed.emit()
        run_in_background(save, done)

    def add(self) -> None:
        editor = NodeEditor(None, self)
        if editor.exec():
            self._save(editor.result_node, replace=False)

    def edit(self) -> None:
        node = self.selected()
        if node is None:
            return
        editor = NodeEditor(node, self)
        if editor.exec():
            self._save(editor.result_node, replace=True)

    def remove(self) -> None:
        node = self.selected()
        if node is None:
            return
        if QMessageBox.question(self, "Remove node", f"Remove the remote node '{node.name}' "
                                f"({node.aet}@{node.host}:{node.port})?") != QMessageBox.Yes:
            return
        engine, actor = self.archive.engine, self.actor

        def remove():
            nodes.remove_node(engine, node.name)
            audit.log(engine, actor, "node-remove", node.name)
        run_in_background(remove, lambda *_: (self.reload(), self.changed.emit()))

    def echo(self) -> None:
        node = self.selected()
        if node is None:
            self.echo_result.setText("Select a node to echo.")
            return
        self.echo_result.setText(f"Echoing {node.aet}@{node.host}:{node.port} …")
        self.echo_button.setEnabled(False)
        settings = self.archive.settings
        started = time.monotonic()

        def done(status, error) -> None:
            self.echo_button.setEnabled(True)
            if error is not None:
                self.echo_result.setText(f"✗ {error}")
                self.echo_result.setStyleSheet(_ERROR_STYLE)
                return
            ms = (time.monotonic() - started) * 1000
            ok = status == 0
            self.echo_result.setStyleSheet("" if ok else _ERROR_STYLE)
            self.echo_result.setText(f"{'✓' if ok else '✗'} C-ECHO {node.aet}@{node.host}:{node.port}: "
                                     f"{'success' if ok else f'status 0x{status:04X}'} ({ms:.0f} ms)")
        run_in_background(lambda: verification.echo_node(settings, node), done)


class RouteEditor(QDialog):
    """One auto-archive rule: where to, and optionally from which AE title / of which modality."""

    def __init__(self, node_names: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Routing rule")
        form = QFormLayout()
        self.name = QLineEdit()
        self.to = QComboBox()
        self.to.addItems(node_names)
        self.from_aet = QLineEdit()
        self.from_aet.setMaxLength(16)
        self.from_aet.setPlaceholderText("any sender")
        self.modality = QLineEdit()
        self.modality.setPlaceholderText("any modality, e.g. CT")
        self.commit = QCheckBox("and ask for storage commitment (lets the watermark free the space later)")
        self.commit.setChecked(True)
        for label, w in (("Name", self.name), ("Send to", self.to), ("Received from AE", self.from_aet),
                         ("Modality", self.modality), ("", self.commit)):
            form.addRow(label, w)
        self.error = QLabel()
        self.error.setStyleSheet(_ERROR_STYLE)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.result_route = None

    def _accept(self) -> None:
        from app.jobs.router import Route
        name, to = self.name.text().strip(), self.to.currentText()
        if not name or not to:
            self.error.setText("A rule needs a name and a node to send to (add the node first).")
            return
        self.result_route = Route(name, to, self.from_aet.text().strip() or None,
                                  self.modality.text().strip().upper() or None, self.commit.isChecked())
        self.accept()


class RoutingTab(QWidget):
    """Auto-archive rules (spec §4.1.2.2), the same as 'lightbox routes': what arrives after a
    rule is made is sent once the study is quiet, by the node of this workstation."""

    def __init__(self, archive, actor: str, parent=None):
        super().__init__(parent)
        self.archive, self.actor = archive, actor
        self.table = make_table(["Name", "Send to", "From AE", "Modality", "Commitment"])
        self.info = QLabel("Rules take effect at once. Only what arrives after a rule is made is sent.")
        self.info.setWordWrap(True)
        list_panel(self, self.table, (("Add…", self.add), ("Remove", self.remove)), self.info)
        self.routes: list = []
        self.reload()

    def reload(self) -> None:
        from app.jobs import router

        def show(found, error) -> None:
            if error is not None:
                self.info.setText(f"The rules cannot be read: {error}")
                return
            self.routes = found
            fill_table(self.table, [[r.name, r.to_node, r.from_aet or "any", r.modality or "any",
                                     "yes" if r.commit else ""] for r in found])
        run_in_background(lambda: router.list_routes(self.archive.engine), show)

    def add(self) -> None:
        editor = RouteEditor([n.name for n in nodes.list_nodes(self.archive.engine) if "store" in n.roles], self)
        self.route_editor = editor
        if editor.exec() and editor.result_route is not None:
            self.save(editor.result_route)

    def save(self, route) -> None:
        from app.jobs import router
        engine, actor = self.archive.engine, self.actor

        def save():
            router.add_route(engine, route)
            audit.log(engine, actor, "route-add", f"{route.name}: to {route.to_node}")
        run_in_background(save, lambda _r, error: (self.info.setText(
            f"Saved rule {route.name}." if error is None else f"Not saved: {error}"), self.reload()))

    def remove(self) -> None:
        from app.jobs import router
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        route = self.routes[rows[0].row()]
        engine, actor = self.archive.engine, self.actor

        def remove():
            router.remove_route(engine, route.name)
            audit.log(engine, actor, "route-remove", route.name)
        run_in_background(remove, lambda *_: self.reload())


class SettingsDialog(QDialog):
    """``on_apply(changed_keys)`` is called after local settings were saved."""

    def __init__(self, archive, actor: str, on_apply=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Lightbox — settings")
        self.archive, self.actor, self.on_apply = archive, actor, on_apply
        self.tabs = QTabWidget()
        self.local = LocalNodeTab(archive.settings)
        self.remote = RemoteNodesTab(archive, actor)
        self.tabs.addTab(self.local, "Local node")
        self.tabs.addTab(self.remote, "Remote nodes")
        self.routing = RoutingTab(archive, actor)
        self.tabs.addTab(self.routing, "Routing")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Apply | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(lambda: self.apply() and self.accept())
        self.buttons.button(QDialogButtonBox.Apply).clicked.connect(self.apply)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs)
        lay.addWidget(self.message)
        lay.addWidget(self.buttons)
        self.resize(1000, 760)

    def apply(self) -> bool:
        changed, errors = self.local.changes()
        if errors:
            self.message.setStyleSheet(_ERROR_STYLE)
            self.message.setText(f"{len(errors)} setting(s) not valid; nothing was saved. " +
                                 "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:3]))
            self.tabs.setCurrentWidget(self.local)
            return False
        if not changed:
            self.message.setText("No changes.")
            return True
        settings = self.archive.settings
        for key, value in changed.items():
            if value == "" and key.endswith(".aet"):
                settings.unset(key)
            else:
                settings.set(key, value)
        settings.save()
        engine, actor = self.archive.engine, self.actor
        run_in_background(lambda: [audit.log(engine, actor, "settings", f"{k} = {v}") for k, v in changed.items()])
        restart = any(_needs_listener_restart(k) for k in changed)
        self.message.setStyleSheet("")
        self.message.setText(f"Saved {len(changed)} setting(s)" +
                             ("; the DICOM listeners restart with them." if restart
                              else "; they apply from the next association."))
        if self.on_apply is not None:
            self.on_apply(list(changed), restart)
        return True
