"""Remote DICOM nodes (spec §4.4.1.3): who may call us and whom we call."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from app.config import SettingsError, check_aet
from app.store.index_writer import insert_ignore
from app.store.schema import config_version, remote_node

ROLES = ("echo", "store", "commit", "find", "move", "get", "worklist", "print")
PACK_OPTIONS = ("", "sr", "sc")  # app.dicom.packing.CARRIERS; "": never pack


def syntaxes_from_text(text: str) -> tuple[str, ...]:
    """'jpeg-lossless,explicit,!jpeg-baseline' (names or UIDs) -> UIDs in that order; '!'
    marks an excluded syntax (never sent in, even when an instance is stored so)."""
    from app.dicom.transfer_syntaxes import SYNTAX_NAMES
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        bang, name = ("!", part[1:].strip()) if part.startswith("!") else ("", part)
        uid = SYNTAX_NAMES.get(name.lower(), name)
        if not uid.replace(".", "").isdigit():
            raise SettingsError(f"unknown transfer syntax '{name}'; use a UID or one of {', '.join(SYNTAX_NAMES)}")
        out.append(bang + uid)
    return tuple(out)


def syntaxes_as_text(syntaxes: tuple[str, ...]) -> str:
    from app.dicom.transfer_syntaxes import SYNTAX_NAMES
    names = {uid: name for name, uid in SYNTAX_NAMES.items()}
    return ",".join(("!" if s.startswith("!") else "") + names.get(s.lstrip("!"), s.lstrip("!")) for s in syntaxes)


def sop_class_uid(text: str) -> str:
    """A storage SOP class by UID or by its DICOM keyword (CTImageStorage)."""
    from pydicom._uid_dict import UID_dictionary
    text = text.strip()
    if text.replace(".", "").isdigit():
        return text
    for uid, (_name, kind, _info, _retired, keyword) in UID_dictionary.items():
        if keyword.lower() == text.lower() and kind == "SOP Class":
            return uid
    raise SettingsError(f"unknown SOP class '{text}'; use its UID or DICOM keyword (e.g. CTImageStorage)")


def class_syntaxes_from_text(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """'CTImageStorage=j2k-lossless,explicit; 1.2.840...=!jpeg-baseline' -> per SOP class
    syntax lists (one per line or separated by ';')."""
    out = []
    for part in (p.strip() for p in text.replace("\n", ";").split(";") if p.strip()):
        sop, sep, syntaxes = part.partition("=")
        if not sep:
            raise SettingsError(f"'{part}': write SOPClass=syntax,syntax (e.g. CTImageStorage=j2k-lossless)")
        out.append((sop_class_uid(sop), syntaxes_from_text(syntaxes)))
    return tuple(out)


def class_syntaxes_as_text(overrides: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    from pydicom.uid import UID
    return "; ".join(f"{UID(sop).keyword or sop}={syntaxes_as_text(ts)}" for sop, ts in overrides)


MEDIUMS = ("BLUE FILM", "CLEAR FILM", "PAPER", "MAMMO BLUE FILM", "MAMMO CLEAR FILM")  # Table 4-29
MAGNIFICATIONS = ("NONE", "BILINEAR", "CUBIC", "REPLICATE")  # Table 4-31
BORDER_DENSITIES = ("", "BLACK", "WHITE")  # Table 4-31; "": the printer's default


@dataclass(frozen=True)
class PrinterSetup:
    """What a film printer takes (spec §4.2.1.3.7.3: "supported film sizes ... film formats of
    the connected DICOM SCP"): the composer offers only these, and composes at its resolution."""
    film_sizes: tuple[str, ...] = ("14INX17IN", "14INX14IN", "11INX14IN", "10INX14IN", "10INX12IN", "8INX10IN",
                                   "24CMX30CM", "24CMX24CM")
    layouts: tuple[str, ...] = ("1x1", "1x2", "2x1", "2x2", "2x3", "3x3", "3x4", "4x4", "4x5", "5x6")
    dpi: int = 300
    bits: int = 12  # 8 or 12 bits per pixel (Table 4-34)
    presentation_lut: bool = False  # N-CREATE an IDENTITY Presentation LUT (Table 4-38)
    color: bool = False  # Basic Color Print Management (Table 4-36)
    mediums: tuple[str, ...] = MEDIUMS
    magnification: str = "NONE"  # the page is sent at the printer's resolution: nothing to magnify
    border_density: str = ""
    min_density: int | None = None
    max_density: int | None = None

    def check(self) -> "PrinterSetup":
        from app.film.compose import film_sizes, parse_layout
        unknown = [s for s in self.film_sizes if s not in film_sizes()]
        if unknown or not self.film_sizes:
            raise SettingsError(f"film size(s) {', '.join(unknown) or '(none)'}: choose from "
                                f"{', '.join(film_sizes())} (spec Table 4-31)")
        from app.film.compose import FilmError
        for layout in self.layouts:
            try:
                parse_layout(layout)
            except FilmError as exc:
                raise SettingsError(f"printer layouts: {exc}") from None
        if not 50 <= self.dpi <= 1200:
            raise SettingsError(f"printer resolution {self.dpi} DPI: 50 to 1200")
        if self.bits not in (8, 12):
            raise SettingsError("a printer takes 8 or 12 bits per pixel (spec Table 4-34)")
        bad = [m for m in self.mediums if m not in MEDIUMS]
        if bad or not self.mediums:
            raise SettingsError(f"medium type(s) {', '.join(bad) or '(none)'}: choose from {', '.join(MEDIUMS)}")
        if self.magnification not in MAGNIFICATIONS:
            raise SettingsError(f"magnification {self.magnification}: one of {', '.join(MAGNIFICATIONS)}")
        if self.border_density not in BORDER_DENSITIES:
            raise SettingsError(f"border density {self.border_density}: BLACK, WHITE or empty")
        if self.min_density is not None and not 0 < self.min_density < 50:
            raise SettingsError("min density: 0 < value < 50 (spec Table 4-31)")
        if self.max_density is not None and not 0 < self.max_density:
            raise SettingsError("max density: 0 < value (spec Table 4-31)")
        return self

    def as_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> "PrinterSetup":
        if not text:
            return cls()
        known = {k: v for k, v in json.loads(text).items() if k in cls.__dataclass_fields__}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in known.items()})

    def as_text(self) -> str:
        """'sizes=14INX17IN,8INX10IN; layouts=1x1,2x2; dpi=300; bits=12; plut=yes; color=no; ...'"""
        parts = [f"sizes={','.join(self.film_sizes)}", f"layouts={','.join(self.layouts)}", f"dpi={self.dpi}",
                 f"bits={self.bits}", f"plut={'yes' if self.presentation_lut else 'no'}",
                 f"color={'yes' if self.color else 'no'}", f"mediums={','.join(self.mediums)}",
                 f"magnification={self.magnification}"]
        parts += [f"border={self.border_density}"] if self.border_density else []
        parts += [f"min_density={self.min_density}"] if self.min_density is not None else []
        parts += [f"max_density={self.max_density}"] if self.max_density is not None else []
        return "; ".join(parts)

    @classmethod
    def from_text(cls, text: str) -> "PrinterSetup":
        names = {"sizes": "film_sizes", "layouts": "layouts", "dpi": "dpi", "bits": "bits",
                 "plut": "presentation_lut", "color": "color", "mediums": "mediums",
                 "magnification": "magnification", "border": "border_density",
                 "min_density": "min_density", "max_density": "max_density"}
        values: dict = {}
        for part in (p.strip() for p in text.split(";") if p.strip()):
            key, sep, value = (x.strip() for x in part.partition("="))
            if not sep or key.lower() not in names:
                raise SettingsError(f"printer setting '{part}': write key=value with key one of {', '.join(names)}")
            name = names[key.lower()]
            if name in ("film_sizes", "layouts", "mediums"):
                values[name] = tuple(v.strip().upper() if name != "layouts" else v.strip().lower()
                                     for v in value.split(",") if v.strip())
            elif name in ("presentation_lut", "color"):
                if value.lower() not in ("yes", "no", "true", "false", "1", "0"):
                    raise SettingsError(f"printer setting {key}={value}: yes or no")
                values[name] = value.lower() in ("yes", "true", "1")
            elif name in ("dpi", "bits", "min_density", "max_density"):
                try:
                    values[name] = int(value)
                except ValueError:
                    raise SettingsError(f"printer setting {key}={value}: a whole number") from None
            else:
                values[name] = value.upper()
        return cls(**values).check()


@dataclass(frozen=True)
class RemoteNode:
    name: str
    aet: str
    host: str
    port: int
    roles: tuple[str, ...]
    tls: bool = False
    certificate: bytes | None = None
    cert_sha256: str | None = None
    comment: str | None = None
    # transfer syntaxes to send in, in order of preference (spec §4.2.1.3.1.2); the ones left
    # out are not used unless an instance is stored in one. Empty: as stored, else uncompressed.
    # '!' before a UID excludes it: never sent in, an instance stored so is decompressed
    transfer_syntaxes: tuple[str, ...] = ()
    # per SOP class, a list replacing transfer_syntaxes for that class
    class_syntaxes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # a Table 4-8 class the node refuses is packed into "sr" or "sc" (§4.2.1.3.1.4); "": not
    pack: str = ""
    # what it takes when it is a film printer (role "print")
    printer: PrinterSetup = field(default_factory=PrinterSetup)

    def send_syntaxes(self, sop_class: str) -> tuple[tuple[str, ...], frozenset[str]]:
        """(preferred syntaxes in order, excluded ones) for sending an instance of ``sop_class``."""
        entries = dict(self.class_syntaxes).get(sop_class, self.transfer_syntaxes)
        return (tuple(s for s in entries if not s.startswith("!")),
                frozenset(s[1:] for s in entries if s.startswith("!")))

    def as_dict(self) -> dict:
        return {"name": self.name, "aet": self.aet, "host": self.host, "port": self.port,
                "roles": list(self.roles), "tls": self.tls, "cert_sha256": self.cert_sha256,
                "comment": self.comment, "transfer_syntaxes": list(self.transfer_syntaxes),
                "class_syntaxes": {sop: list(ts) for sop, ts in self.class_syntaxes}, "pack": self.pack,
                **({"printer": asdict(self.printer)} if "print" in self.roles else {})}


def certificate_thumbprint(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _bump(conn) -> None:
    n = conn.execute(update(config_version).where(config_version.c.name == "nodes")
                     .values(version=config_version.c.version + 1)).rowcount
    if not n:
        insert_ignore(conn, config_version, {"name": "nodes", "version": 1})


def version(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(config_version.c.version)
                            .where(config_version.c.name == "nodes")).scalar() or 0


def _row(r) -> RemoteNode:
    return RemoteNode(r.name, r.aet, r.host, r.port, tuple(x for x in r.roles.split(",") if x),
                      bool(r.tls), r.certificate, r.cert_sha256, r.comment,
                      tuple(x for x in (r.transfer_syntaxes or "").split(",") if x),
                      tuple((sop, tuple(x for x in ts.split(",") if x)) for sop, _, ts in
                            (p.partition("=") for p in (r.class_syntaxes or "").split(";") if p)),
                      r.pack_as or "", PrinterSetup.from_json(r.printer))


def list_nodes(engine: Engine) -> list[RemoteNode]:
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(remote_node).order_by(remote_node.c.name))]


def get_node(engine: Engine, name: str) -> RemoteNode | None:
    with engine.connect() as conn:
        r = conn.execute(select(remote_node).where(remote_node.c.name == name)).first()
    return _row(r) if r else None


def add_node(engine: Engine, node: RemoteNode, *, replace: bool = False) -> RemoteNode:
    if not node.name.strip():
        raise SettingsError("a node needs a name")
    check_aet(node.aet)
    if not 0 < node.port < 65536:
        raise SettingsError(f"port {node.port} is out of range 1-65535")
    from app.dicom.compression import PRODUCIBLE
    from app.dicom.transfer_syntaxes import SYNTAX_NAMES, UNCOMPRESSED
    every = node.transfer_syntaxes + tuple(s for _, ts in node.class_syntaxes for s in ts)
    cannot = sorted({ts for ts in every if not ts.startswith("!") and ts not in PRODUCIBLE and ts not in UNCOMPRESSED})
    if cannot:
        raise SettingsError(f"Lightbox cannot produce transfer syntax {', '.join(cannot)} (it sends in "
                            f"{', '.join(SYNTAX_NAMES)}; '!' before one excludes it)")
    if node.pack not in PACK_OPTIONS:
        raise SettingsError(f"unknown packing '{node.pack}': sr (Basic Text SR), sc (Secondary Capture) or none")
    unknown = [r for r in node.roles if r not in ROLES]
    if unknown:
        raise SettingsError(f"unknown role(s) {', '.join(unknown)}; choose from {', '.join(ROLES)}")
    thumb = node.cert_sha256.lower().replace(":", "") if node.cert_sha256 else None
    if node.certificate:
        try:
            actual = certificate_thumbprint(node.certificate)
        except ValueError:
            raise SettingsError("the certificate file is not a PEM X.509 certificate") from None
        if thumb and thumb != actual:
            raise SettingsError(f"the certificate's SHA-256 thumbprint is {actual}, not {thumb}")
        thumb = actual
    values = {"name": node.name, "aet": node.aet, "host": node.host, "port": node.port,
              "roles": ",".join(node.roles), "tls": int(node.tls), "certificate": node.certificate,
              "cert_sha256": thumb, "comment": node.comment,
              "transfer_syntaxes": ",".join(node.transfer_syntaxes) or None,
              "class_syntaxes": ";".join(f"{sop}={','.join(ts)}" for sop, ts in node.class_syntaxes) or None,
              "pack_as": node.pack or None,
              "printer": node.printer.check().as_json() if "print" in node.roles else None}
    with engine.begin() as conn:
        exists = conn.execute(select(remote_node.c.name).where(remote_node.c.name == node.name)).first()
        if exists and not replace:
            raise SettingsError(f"a node named '{node.name}' exists; remove it first or use --replace")
        if exists:
            conn.execute(update(remote_node).where(remote_node.c.name == node.name).values(**values))
        else:
            conn.execute(remote_node.insert().values(**values))
        _bump(conn)
    return get_node(engine, node.name)


def remove_node(engine: Engine, name: str) -> bool:
    with engine.begin() as conn:
        n = conn.execute(delete(remote_node).where(remote_node.c.name == name)).rowcount
        _bump(conn)
    return bool(n)


@dataclass(frozen=True)
class NodeTemplate:
    name: str
    aet: str
    port: int
    roles: tuple[str, ...]
    comment: str


def templates() -> list[NodeTemplate]:
    """Common peers that prefill a new node (resources/node_templates.tsv)."""
    from app.resources import read_tsv
    return [NodeTemplate(name, aet, int(port), tuple(roles.split(",")), comment)
            for name, aet, port, roles, comment in read_tsv("node_templates.tsv")]


def check_host(host: str) -> str | None:
    """Why ``host`` cannot be reached by name, or None if it resolves."""
    import socket
    if not host.strip():
        return "a node needs a host name or address"
    try:
        socket.getaddrinfo(host.strip(), None)
    except (socket.gaierror, UnicodeError) as exc:
        return f"the host '{host}' cannot be found ({exc.strerror if hasattr(exc, 'strerror') else exc}); " \
               "check its spelling or use its IP address"
    return None
