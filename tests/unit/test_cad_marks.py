"""CAD marks from Mammography CAD SRs per spec Table 8-13 (app.imaging.cad_marks): which
findings are drawn, their outlines, rendering intent, clusters, the summary, the software
list and the For Processing -> For Presentation move."""

from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from app.imaging import cad_marks
from tests.mammo_samples import MG_PROCESSING, cad_report, finding, mammogram


def _report(findings, **kw):
    return cad_marks.read_report(cad_report(generate_uid(), findings, **kw))


def test_table_8_13_findings_and_rules():
    img = "1.2.3.4"
    cluster = finding("F-01775", "SRT", "Calcification Cluster", image=img, points=[10, 10, 40, 10, 40, 30, 10, 10],
                      children=[finding("F-01776", "SRT", "Individual Calcification", image=img, graphic="POINT",
                                        points=[20, 20])])
    report = _report([
        cluster,
        finding("129770007", "SCT", "Individual Calcification", image=img, graphic="POINT", points=[100, 50]),
        finding("F-01796", "SRT", "Mammography breast density", image=img, points=[1, 2, 3, 4], intent="111152"),
        finding("F-01796", "SRT 1.1", "Mammography breast density", image=img, points=[5, 6, 7, 8], intent="111151",
                operating_point=0.4),
        finding("F-01710", "SRT", "Breast Composition", intent=None),
        finding("DS-1", "99-SCREENPOINTMED", "Decision Support Finding", image=img, graphic="CIRCLE",
                points=[50, 50, 60, 50], intent="111152"),
        finding("4147007", "SCT", "Mass", image=img, points=[1, 1, 2, 2]),                       # not in the table
        finding("F-01776", "SRT", "Individual Calcification", image=img, graphic="POINT", points=None),  # no outline
    ])
    kinds = [(m.kind, m.graphic, m.optional) for m in report.marks]
    assert kinds == [("calcification-cluster", "POLYLINE", False), ("calcification", "POINT", False),
                     ("density", "POLYLINE", True), ("composition", "", False), ("decision-support", "CIRCLE", False)]
    cluster_mark = report.marks[0]
    assert cluster_mark.image == img and cluster_mark.points[:2] == [(10.0, 10.0), (40.0, 10.0)]
    assert cluster_mark.algorithm == "CalcFinder" and report.marks[2].operating_point == 0.4
    assert report.supported and report.summary == "findings" and not report.failed


def test_no_findings_differs_from_cad_failed_and_unlisted_software_is_still_read():
    quiet = _report([], summary="111241")
    assert quiet.marks == [] and quiet.summary == "no findings" and not quiet.failed
    failed = _report([], summary="111245", manufacturer="Other CAD Corp", software="9")
    assert failed.failed and not failed.supported


def test_marks_on_for_processing_images_move_to_their_presentation_image():
    processing = mammogram("R", "CC", sop_class=MG_PROCESSING)
    presentation = mammogram("R", "CC")
    ref = presentation.__class__()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = MG_PROCESSING, processing.SOPInstanceUID
    presentation.SourceImageSequence = Sequence([ref])
    report = _report([finding("F-01775", "SRT", "Calcification Cluster", image=str(processing.SOPInstanceUID),
                              points=[1, 1, 2, 2])])
    moved = cad_marks.on_presentation_images(report.marks, [presentation])
    assert moved[0].image == str(presentation.SOPInstanceUID)
