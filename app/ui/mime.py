"""What is dragged between Lightbox's windows (viewer, browser, film composer)."""

import json

SERIES_MIME = "application/x-lightbox-series-uid"  # one Series Instance UID
STUDIES_MIME = "application/x-lightbox-study-uids"  # Study Instance UIDs, one per line
CELLS_MIME = "application/x-lightbox-film-cells"  # JSON list of app.film.sheet.Cell fields


def cells_mime(cells: list) -> bytes:
    return json.dumps([c.as_dict() for c in cells]).encode()


def cells_from_mime(data: bytes) -> list:
    from app.film.sheet import Cell
    return [Cell(**d) for d in json.loads(bytes(data).decode())]
