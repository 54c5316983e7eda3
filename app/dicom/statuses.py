"""DIMSE status codes Lightbox answers with, from spec Table 4-43 (C-STORE) and Table 4-49 (C-FIND)."""

SUCCESS = 0x0000
# Table 4-43: "No resource left in the Short Term Storage"
OUT_OF_RESOURCES = 0xA700
# Table 4-43: "The data set is not conform to the SOP Class" (A9xx)
DATASET_DOES_NOT_MATCH = 0xA900
# Table 4-43: "Error during instance reception" (Cxxx): we split the cause
CANNOT_UNDERSTAND = 0xC000   # the dataset could not be parsed
STORE_FAILED = 0xC001        # parsed, but could not be written or indexed

# C-FIND, spec Table 4-49 (and the text of §4.2.1.4.3.4 for a key below the level)
PENDING = 0xFF00           # a match; optional keys supported as required ones
PENDING_WARNING = 0xFF01   # a match; some keys given a value are not supported for matching
CANCELLED = 0xFE00
QUERY_FAILED = 0xC001      # the request could not be parsed or translated, or the database failed
INVALID_ATTRIBUTE = 0x0106  # "a series level attribute is requested in a study level query"
