"""Settings and paths.

The data home (``--home`` / ``LIGHTBOX_HOME`` / the user's data directory) holds
``settings.toml`` (human-readable, one section per area), the SQLite database, the archive
and the logs. Every parameter of spec Table 4-53 is a setting with the default given there.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

SETTINGS_FILE = "settings.toml"
MAX_PDU_LIMIT = 512 * 1024  # spec §4.2.1.2: "a limitation of 512 kB for the maximum PDU size"
SERVICES = ("verification", "storage", "commitment", "query", "retrieve")


def default_aet() -> str:
    """Spec §4.4.1.2: host name in upper case, at most 16 characters."""
    name = socket.gethostname().split(".")[0].upper()
    name = "".join(c for c in name if c.isascii() and c.isprintable() and c != "\\")
    return (name or "LIGHTBOX")[:16]


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    help: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] | None = None


# Order here is the order in the settings file.
SETTINGS: tuple[Setting, ...] = (
    Setting("node.aet", None, "AE title of this node (default: host name in upper case)"),
    Setting("node.host", "", "listen address; empty = every IPv4 and IPv6 address"),
    Setting("node.port", 11112, "listen port (104 needs privileges)", 1, 65535),
    # Table 4-53
    Setting("node.max_pdu", 32768, "max PDU size we receive, bytes (Table 4-53)", 4096, MAX_PDU_LIMIT),
    Setting("node.max_associations", 12, "max parallel receiving associations (Table 4-53)", 1, 1000),
    Setting("node.max_matches", 100, "max matches returned for a query (Table 4-53)", 1, 1_000_000),
    Setting("node.workers", 0, "worker processes of the headless node (0 = one per CPU core, 1 = threads only)", 0, 64),
    Setting("node.index_batch", 20, "instances collected before one database commit (Table 4-53)", 1, 1000),
    Setting("timeouts.association", 30, "s to accept/reject an association request (Table 4-53)", 1, 3600),
    Setting("timeouts.open_close", 30, "s to answer an association open/close request (Table 4-53)", 1, 3600),
    Setting("timeouts.message", 30, "s to accept a message over the network (Table 4-53)", 1, 3600),
    Setting("timeouts.tcp_data", 5, "s to wait for data between TCP packets (Table 4-53)", 1, 3600),
    Setting("timeouts.storage", 30, "s to wait for a Storage request/response (Table 4-53)", 1, 3600),
    Setting("timeouts.query", 30, "s to wait for a Query/Retrieve request/response (Table 4-53)", 1, 3600),
    Setting("timeouts.move_response", 1200, "s to wait for a C-MOVE-RSP (Table 4-53, fixed)", 1200, 1200),
    # acceptance policy (spec §4.2.1.4, §7.2)
    Setting("policy.check_calling_ae", True, "accept only configured remote nodes as callers"),
    Setting("policy.async_window", 16, "window offered when a peer asks for an unlimited one (§4.2.1.2.1)", 1, 65535),
    Setting("storage.watermark_high", 90, "disk % used above which committed studies are deleted, oldest "
            "first (0 = never)", 0, 100),
    Setting("storage.watermark_low", 80, "disk % used the watermark deletes down to", 0, 100),
    Setting("storage.watermark_check", 60, "s between two watermark checks", 1, 86400),
    Setting("storage.free_space_floor_mb", 500, "refuse to store (A700) below this much free disk, MB", 0, 10**7),
    # sending (spec §4.2.1.3.1.1: retries of transient failures, default 2, 30 s apart)
    Setting("send.retries", 2, "retries of a send after a transient failure (unreachable, dropped)", 0, 100),
    Setting("send.retry_interval", 30, "s between the retries of a send", 1, 3600),
    # auto-archive (spec §4.1.2.2): routing rules are kept with the nodes ('lightbox routes')
    Setting("routing.stable", 30, "s a received study must be quiet before its routing rules send it", 0, 86400),
    Setting("routing.check", 10, "s between two looks for received studies to route", 1, 3600),
    # storage commitment (spec §4.2.1.3.2)
    Setting("commit.delay", 600, "s after a send before the commitment request (the archive indexes first)", 0, 86400),
    Setting("commit.per_instance", False, "one commitment request per instance instead of one per send"),
    Setting("commit.report_timeout", 600, "s to wait for the commitment report", 5, 86400),
    Setting("viewer.cache_mb", 1024, "memory for decoded images per open series in the viewer, MB", 64, 65536),
    # modality worklist (spec §4.2.1.3.6, Table 4-23): the broad query of each provider
    Setting("print.retry_interval", 30, "s between two tries of a printer that is unavailable", 1, 3600),
    Setting("print.status_interval", 60, "s between two printer status requests (0 = only when printing)",
            0, 86400),
    Setting("worklist.interval", 300, "s between two queries of each worklist provider (0 = only on request)",
            0, 86400),
    Setting("worklist.modality", "*", "modality asked for ('*' = all)"),
    Setting("worklist.own_aet_only", True, "ask only for steps scheduled on this node's AE title "
            "(else Scheduled Station AE Title '*')"),
    Setting("worklist.days_past", 1, "days before today the scheduled start date range begins", 0, 365),
    Setting("worklist.days_future", 1, "days after today the scheduled start date range ends", 0, 365),
    # hanging protocols: prior studies from the archive (issue 7)
    Setting("hanging.priors_node", "", "remote node the viewer and 'lightbox hang' fetch a study's priors from "
            "(empty = the local archive only)"),
    Setting("hanging.priors_count", 2, "how many of the newest prior studies to fetch", 1, 20),
    Setting("hanging.priors_method", "move", "how priors are retrieved: move (C-MOVE to us) | get (C-GET)",
            choices=("move", "get")),
    # secure transport (spec §4.4.1.1, §7.1.2 — TLS 1.2/1.3 instead of TLS 1.0)
    Setting("tls.mode", "off", "off | also (TLS on tls.port besides plain) | only (secure only)",
            choices=("off", "also", "only")),
    Setting("tls.port", 2762, "TLS port when tls.mode = also", 1, 65535),
    Setting("tls.certificate", "", "our certificate (PEM)"),
    Setting("tls.private_key", "", "our private key (PEM)"),
    Setting("tls.ca_file", "", "CA certificates trusted for remote nodes (PEM)"),
    Setting("tls.min_version", "1.2", "lowest TLS version accepted", choices=("1.2", "1.3")),
) + tuple(
    s for service in SERVICES for s in (
        Setting(f"services.{service}.aet", "", f"own AE title for {service} (§4.4.1.2; empty = node.aet)"),
        Setting(f"services.{service}.port", 0, f"own port for {service} (0 = node.port)", 0, 65535),
    )
)

_BY_KEY = {s.key: s for s in SETTINGS}


class SettingsError(ValueError):
    pass


def make_home(home: Path) -> Path:
    """Create the data home readable by its owner only: it holds patient data, and whoever
    can read it acts as its owner on the command line."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home


def data_home(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get("LIGHTBOX_HOME"):
        return Path(os.environ["LIGHTBOX_HOME"]).expanduser().resolve()
    return Path(platformdirs.user_data_dir("lightbox", appauthor=False))


def parse_value(key: str, raw: Any) -> Any:
    """Validate and convert a value for ``key`` (a string from the command line or TOML)."""
    spec = _BY_KEY.get(key)
    if spec is None:
        raise SettingsError(f"unknown setting '{key}' (see 'lightbox config list')")
    kind = type(spec.default) if spec.default is not None else str
    try:
        if kind is bool:
            if isinstance(raw, bool):
                value = raw
            elif str(raw).lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError
        elif kind is int:
            if isinstance(raw, bool):
                raise ValueError
            value = int(raw)
        else:
            value = str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{key}: '{raw}' is not a valid {kind.__name__}") from None
    if spec.minimum is not None and value < spec.minimum:
        raise SettingsError(f"{key}: {value} is below the minimum {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise SettingsError(f"{key}: {value} is above the maximum {spec.maximum}")
    if spec.choices and value not in spec.choices:
        raise SettingsError(f"{key}: '{value}' is not one of {', '.join(spec.choices)}")
    if key.endswith("aet") and value:
        check_aet(value)
    return value


def check_aet(value: str) -> str:
    """Spec §4.4.1: up to 16 characters of 7-bit ASCII without control characters."""
    if not value.strip() or len(value) > 16 or not value.isascii() or "\\" in value \
            or any(not c.isprintable() for c in value):
        raise SettingsError(f"'{value}' is not a valid AE title (1-16 printable ASCII characters, no '\\')")
    return value


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class Settings:
    """The settings of one data home. Unset keys take their defaults."""

    def __init__(self, home: Path, values: dict[str, Any] | None = None):
        self.home = home
        self._values = dict(values or {})

    @classmethod
    def load(cls, home: Path) -> "Settings":
        path = home / SETTINGS_FILE
        values: dict[str, Any] = {}
        if path.exists():
            try:
                tree = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise SettingsError(f"{path} is not valid TOML: {exc}") from None
            for key, raw in _flatten(tree).items():
                values[key] = parse_value(key, raw)
        return cls(home, values)

    @property
    def path(self) -> Path:
        return self.home / SETTINGS_FILE

    def mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def get(self, key: str) -> Any:
        if key not in _BY_KEY:
            raise SettingsError(f"unknown setting '{key}' (see 'lightbox config list')")
        if key in self._values:
            return self._values[key]
        if key == "node.aet":
            return default_aet()
        return _BY_KEY[key].default

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def set(self, key: str, raw: Any) -> Any:
        value = parse_value(key, raw)
        self._values[key] = value
        return value

    def unset(self, key: str) -> None:
        if key not in _BY_KEY:
            raise SettingsError(f"unknown setting '{key}' (see 'lightbox config list')")
        self._values.pop(key, None)

    def is_set(self, key: str) -> bool:
        return key in self._values

    def save(self) -> None:
        """Write the file atomically, every setting with its help text as a comment."""
        lines = ["# Lightbox settings. Change with 'lightbox config set KEY VALUE'.", ""]
        section = None
        for spec in SETTINGS:
            sec, _, name = spec.key.rpartition(".")
            if sec != section:
                lines += ["", f"[{sec}]"] if section is not None else [f"[{sec}]"]
                section = sec
            lines.append(f"# {spec.help}")
            if spec.key in self._values:
                lines.append(f"{name} = {_toml_value(self._values[spec.key])}")
            else:
                shown = default_aet() if spec.key == "node.aet" else spec.default
                lines.append(f"# {name} = {_toml_value(shown)}")
        make_home(self.home)
        tmp = self.path.with_suffix(".toml.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def service_address(self, service: str) -> tuple[str, int]:
        """(AE title, port) a service answers on (spec §4.4.1.2)."""
        aet = self.get(f"services.{service}.aet") or self.get("node.aet")
        port = self.get(f"services.{service}.port") or self.get("node.port")
        return aet, port


def settings_help() -> list[Setting]:
    return list(SETTINGS)
