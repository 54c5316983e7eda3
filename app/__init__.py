"""Lightbox: a DICOM review workstation with an embedded DICOM node."""

__version__ = "0.1.0"
