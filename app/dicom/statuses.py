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

# What a C-STORE response means to a send job, spec Table 4-6 (the SCU's status handling):
# (lowest, highest, outcome, what the user is told). First match wins; anything else is an
# error: the job goes on to the end, logs it and reports the share that was transferred.
DUPLICATE_SOP_INSTANCE = 0x0111
SEND_OUTCOMES = (
    (0x0000, 0x0000, "sent", ""),
    (0x0111, 0x0111, "present", "already on the remote node (not overwritten)"),
    (0xB000, 0xBFFF, "sent", "stored with a warning"),   # coercion, elements discarded (PS3.4 B.2.3)
    (0xA700, 0xA7FF, "failed", "the remote node is out of resources (disk full?)"),
    (0xA900, 0xA9FF, "failed", "the remote node says the data set does not match the SOP class"),
    (0xC000, 0xCFFF, "failed", "the remote node cannot understand the data set"),
    (0x0122, 0x0122, "failed", "the remote node does not support this SOP class"),
    (0x0124, 0x0124, "failed", "the remote node refuses it (not authorised)"),
)


def send_outcome(status: int) -> tuple[str, str]:
    """(sent | present | failed, message) for a C-STORE response status (Table 4-6)."""
    for low, high, outcome, message in SEND_OUTCOMES:
        if low <= status <= high:
            return outcome, message
    return "failed", f"the remote node answered status 0x{status:04X}"
