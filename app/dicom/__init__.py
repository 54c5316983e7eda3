"""DICOM knowledge as data: SOP classes, transfer syntaxes, character sets, our UIDs."""
