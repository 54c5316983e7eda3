"""Lightbox's own identity. Never the reference product's UID root or implementation UID."""

import pydicom.uid

from app import __version__

# Fixed for every Lightbox release; the same for network (spec Table 4-3) and media (Table 5-1).
IMPLEMENTATION_CLASS_UID = "2.25.41340278884579291723093690173249600772"
IMPLEMENTATION_VERSION_NAME = f"LIGHTBOX_{__version__}"[:16]


def new_uid() -> str:
    """A new UID in the 2.25 (UUID-derived) form, so no registered root is needed."""
    return pydicom.uid.generate_uid(prefix=None)


def is_valid_uid(value: object) -> bool:
    """PS3.5 §9.1: digits and dots, no empty or zero-led component, at most 64 chars.

    A UID becomes a file name; anything else must never reach the file system.
    """
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return False
    for part in value.split("."):
        if not part or not part.isascii() or not part.isdigit():
            return False
        if len(part) > 1 and part[0] == "0":
            return False
    return True
