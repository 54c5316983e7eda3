"""The embedded DICOM node (pynetdicom): one module per service, SCP and SCU side."""
