"""DIMSE status codes Lightbox answers with, from spec Table 4-43 (C-STORE)."""

SUCCESS = 0x0000
# Table 4-43: "No resource left in the Short Term Storage"
OUT_OF_RESOURCES = 0xA700
# Table 4-43: "The data set is not conform to the SOP Class" (A9xx)
DATASET_DOES_NOT_MATCH = 0xA900
# Table 4-43: "Error during instance reception" (Cxxx): we split the cause
CANNOT_UNDERSTAND = 0xC000   # the dataset could not be parsed
STORE_FAILED = 0xC001        # parsed, but could not be written or indexed
