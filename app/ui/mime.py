"""What is dragged between Lightbox's windows (viewer, browser, film composer)."""

SERIES_MIME = "application/x-lightbox-series-uid"  # one Series Instance UID
STUDIES_MIME = "application/x-lightbox-study-uids"  # Study Instance UIDs, one per line
CELLS_MIME = "application/x-lightbox-film-cells"  # JSON list of app.film.sheet.Cell fields
