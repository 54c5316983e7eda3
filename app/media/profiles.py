"""Media application profiles (spec §5.2.1, Tables 1-2, 5-2 to 5-5): which SOP classes a
File-set of each profile may hold and the transfer syntax each instance is written in.

The SOP class / transfer syntax tables are data (resources/spec/media_sop_classes.tsv):
Table 5-4 for STD-GEN-CD and STD-GEN-DVD (Explicit VR Little Endian only), Table 5-3 for
STD-GEN-DVD-J2K and STD-GEN-USB-J2K. Table 1-2 marks all four profiles "augmented, see
5.2.1": §5.3.1 augments them with the private Siemens CSA Non-Image class of Table 5-5, so
its rows belong to every profile.

RLE Lossless is listed by Table 5-3 but "only applies for decompression" (§5.2.1.3): an RLE
instance is read from a medium, never written to one, so ``allowed`` leaves it out.

Which profile an export uses (Table 1-2's note, ``CHOICES``): the export UI offers
"Standard" (uncompressed, §5.2.1.2.3) -> STD-GEN-xx of the chosen medium, and "Patient"
(compressed) -> STD-GEN-xx-J2K of the chosen medium or destination. Only the profiles
Table 1-2 lists exist, so "Standard" has no USB profile and "Patient" no CD profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from app.resources import read_tsv

EXPLICIT_LE = "1.2.840.10008.1.2.1"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"  # JPEG 2000 Image Compression (lossy, or lossless)

READ_ONLY = frozenset({RLE_LOSSLESS})  # §5.2.1.3: accepted from a medium, never written

# CD-R 80 min: 360,000 sectors of 2048 bytes of data. DVD±R single layer: 2,295,104 sectors
# (DVD+R; DVD-R has 2,298,496) of 2048 bytes, the smaller of the two.
CD_BYTES = 360_000 * 2048  # 737,280,000
DVD_BYTES = 2_295_104 * 2048  # 4,700,372,992


@dataclass(frozen=True)
class Profile:
    name: str  # STD-GEN-CD ...
    medium: str  # "cd" | "dvd" | "usb"
    capacity: int | None  # bytes; None = the destination folder's free space
    j2k: bool
    iso: bool  # CD/DVD produce an ISO image to burn, USB writes a folder
    tables: tuple[str, ...]  # the spec tables listing its SOP classes


PROFILES: dict[str, Profile] = {
    p.name: p for p in (
        Profile("STD-GEN-CD", "cd", CD_BYTES, j2k=False, iso=True, tables=("5-4", "5-5")),
        Profile("STD-GEN-DVD", "dvd", DVD_BYTES, j2k=False, iso=True, tables=("5-4", "5-5")),
        Profile("STD-GEN-DVD-J2K", "dvd", DVD_BYTES, j2k=True, iso=True, tables=("5-3", "5-5")),
        Profile("STD-GEN-USB-J2K", "usb", None, j2k=True, iso=False, tables=("5-3", "5-5")),
    )
}

# Table 1-2's note: the export UI's profile choice and the medium give the profile.
CHOICES: dict[str, dict[str, str]] = {
    "standard": {"cd": "STD-GEN-CD", "dvd": "STD-GEN-DVD"},
    "patient": {"dvd": "STD-GEN-DVD-J2K", "usb": "STD-GEN-USB-J2K"},
}


@dataclass(frozen=True)
class Row:
    table: str  # "5-3" | "5-4" | "5-5"
    sop_class_uid: str
    name: str
    transfer_syntaxes: tuple[str, ...]  # in the table's order, RLE included
    note: str


@cache
def rows() -> tuple[Row, ...]:
    out = []
    for table, uid, name, syntaxes, *note in read_tsv("spec", "media_sop_classes.tsv"):
        out.append(Row(table, uid, name, tuple(syntaxes.split(",")), note[0] if note else ""))
    return tuple(out)


@cache
def _index() -> dict[tuple[str, str], Row]:
    return {(r.table, r.sop_class_uid): r for r in rows()}


def profile_for(choice: str, medium: str) -> str:
    """The profile of Table 1-2's note for the UI choice ("standard"/"patient") and medium."""
    try:
        return CHOICES[choice][medium]
    except KeyError:
        offered = ", ".join(f"{c}/{m}" for c, media in CHOICES.items() for m in media)
        raise ValueError(f"no {choice!r} profile for {medium!r} (Table 1-2 offers {offered})") from None


def _profile(profile: str) -> Profile:
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}: one of {', '.join(PROFILES)}") from None


def _row(profile: str, sop_class: str) -> Row | None:
    index = _index()
    for table in _profile(profile).tables:
        row = index.get((table, str(sop_class)))
        if row is not None:
            return row
    return None


def allowed(profile: str, sop_class: str) -> tuple[str, ...]:
    """The transfer syntaxes the profile's table lists for the class, in the table's order,
    without RLE Lossless (read only). Empty: the class is not in the profile."""
    row = _row(profile, sop_class)
    if row is None:
        return ()
    return tuple(ts for ts in row.transfer_syntaxes if ts not in READ_ONLY)


def target_syntax(profile: str, sop_class: str, *, lossy: bool = False) -> str | None:
    """The transfer syntax an instance of the class is written in.

    STD-GEN-CD/DVD: Explicit VR Little Endian. J2K profiles: JPEG 2000 (lossy) when ``lossy``
    and the row lists it, else JPEG 2000 Lossless where the row lists it (image classes;
    NM and PET rows list no lossy syntax, so they stay lossless), else Explicit VR Little
    Endian. The exporter writes an instance without pixel data, or one JPEG 2000 cannot
    hold, in Explicit VR Little Endian when the row lists it.

    None: the class is not in the profile's table; the exporter refuses and reports the
    instance (writing it anyway would make the File-set non-conformant to the profile).
    """
    syntaxes = allowed(profile, sop_class)
    if not syntaxes:
        return None
    if PROFILES[profile].j2k:
        if lossy and J2K in syntaxes:
            return J2K
        if J2K_LOSSLESS in syntaxes:
            return J2K_LOSSLESS
    if EXPLICIT_LE in syntaxes:
        return EXPLICIT_LE
    return syntaxes[0]  # no row lacks Explicit VR LE; kept total for a future table


def sop_classes(profile: str) -> list[str]:
    """The SOP classes the profile's tables list, in the tables' order (the DICOMDIR's
    Media Storage Directory class included)."""
    index = _index()
    return [uid for table in _profile(profile).tables for (t, uid) in index if t == table]
