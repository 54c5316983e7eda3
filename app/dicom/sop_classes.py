"""SOP class registry read from spec Tables 8-1 / 8-2 (resources/spec/sop_classes.tsv)."""

from dataclasses import dataclass
from functools import cache

from app.resources import read_tsv


@dataclass(frozen=True)
class SopClass:
    uid: str
    service: str  # storage, verification, commitment, find, move, worklist, print
    scu: bool
    scp: bool
    visualization: bool
    name: str


@cache
def all_sop_classes() -> tuple[SopClass, ...]:
    out = []
    for uid, service, scu, scp, vis, name in read_tsv("spec", "sop_classes.tsv"):
        out.append(SopClass(uid, service, scu == "yes", scp == "yes", vis == "yes", name))
    return tuple(out)


def by_service(service: str, *, scp: bool | None = None) -> list[SopClass]:
    return [
        c for c in all_sop_classes()
        if c.service == service and (scp is None or c.scp == scp)
    ]


def storage_scp_classes() -> list[str]:
    return [c.uid for c in by_service("storage", scp=True)]


def lookup(uid: str) -> SopClass | None:
    for c in all_sop_classes():
        if c.uid == uid:
            return c
    return None
