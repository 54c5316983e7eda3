"""The hanging protocol engine (app.imaging.hanging) over the built-in protocols: which one a
study gets, what each stage shows where, which stages are skipped, user protocols."""

import json

import pytest
from pydicom.uid import generate_uid

from app.imaging import hanging
from tests.mammo_samples import MG_PROCESSING, ct_tomo_slices, mammogram, tomo_volume

FOUR = [("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")]


def _screening(date: str, extra=(), processing: bool = False):
    study = generate_uid()
    headers = [mammogram(lat, view, study=study, date=date) for lat, view in FOUR]
    headers += [mammogram(lat, view, study=study, date=date, modifiers=mods) for lat, view, mods in extra]
    if processing:
        headers += [mammogram(lat, view, study=study, date=date, sop_class=MG_PROCESSING) for lat, view in FOUR]
    return hanging.display_sets(headers)


def _labels(stage):
    return [(hv.display_set.study_date, hv.display_set.label) if hv.display_set else None for hv in stage.viewports]


def test_screening_with_a_prior_starts_with_the_overview():
    studies = hanging.Studies(_screening("20260310", processing=True), [_screening("20250302")])
    protocols = hanging.load_protocols()
    protocol = hanging.choose(protocols, studies)
    assert protocol.id == "mg-screening-2d"
    stages = hanging.hang(protocol, studies)
    assert [s.name for s in stages][:4] == ["Overview: priors above, current below", "Current 4-up",
                                           "MLO: prior above, current below", "CC: prior above, current below"]
    assert _labels(stages[0]) == [("20250302", "RMLO"), ("20250302", "LMLO"), ("20250302", "RCC"), ("20250302", "LCC"),
                                  ("20260310", "RMLO"), ("20260310", "LMLO"), ("20260310", "RCC"), ("20260310", "LCC")]
    assert _labels(stages[1]) == [("20260310", "RCC"), ("20260310", "LCC"), ("20260310", "RMLO"), ("20260310", "LMLO")]
    assert "Additional views" not in [s.name for s in stages]
    assert [hv.viewport.size for hv in stages[6].viewports] == ["true"]  # RCC at true size


def test_without_prior_the_comparison_stages_are_skipped_and_extra_views_appear():
    studies = hanging.Studies(_screening("20260310", extra=[("R", "CC", ("ID",)), ("L", "CC", ("M",))]))
    stages = hanging.hang(hanging.choose(hanging.load_protocols(), studies), studies)
    names = [s.name for s in stages]
    assert names[0] == "Current 4-up" and not any("prior" in n for n in names)
    extra = next(s for s in stages if s.name == "Additional views")
    assert [lbl for _, lbl in filter(None, _labels(extra))] == ["RCC ID", "LCC M"]
    # an implant-displaced view never fills a screening slot
    assert _labels(stages[0])[0] == ("20260310", "RCC")


def test_tomosynthesis_hangs_tomo_with_its_2d_mammogram_first():
    study = generate_uid()
    headers = [tomo_volume(lat, view, study=study) for lat, view in FOUR]
    headers += [tomo_volume(lat, view, study=study, generated_2d=True) for lat, view in FOUR]
    headers += [mammogram("R", "CC", study=study)]
    studies = hanging.Studies(hanging.display_sets(headers))
    protocol = hanging.choose(hanging.load_protocols(), studies)
    assert protocol.id == "mg-tomosynthesis"
    stages = hanging.hang(protocol, studies)
    first = stages[0]
    assert first.name == "CC tomosynthesis with 2D"
    kinds = [hv.display_set.kind for hv in first.viewports]
    assert kinds == ["dbt", "dbt", "mg", "generated-2d"]  # the RCC has a real 2D: it comes first
    assert [hv.viewport.link for hv in first.viewports] == ["tomo", "tomo", "2d", "2d"]


def test_tomosynthesis_as_ct_is_one_display_set_per_series():
    slices = ct_tomo_slices("R", "CC", slices=6)
    sets = hanging.display_sets(slices)
    assert len(sets) == 1 and sets[0].kind == "dbt-ct" and sets[0].frames == 6 and sets[0].label == "RCC"


def test_other_studies_get_the_generic_protocol():
    from tests.peers.peerutil import ct_dataset
    study = generate_uid()
    headers = [ct_dataset(study, series, generate_uid(), i + 1, size=8) for series in (generate_uid(), generate_uid())
               for i in range(3)]
    studies = hanging.Studies(hanging.display_sets(headers))
    protocol = hanging.choose(hanging.load_protocols(), studies)
    assert protocol.id == "generic"
    stages = hanging.hang(protocol, studies)
    assert [s.name for s in stages] == ["Series 2x2", "Series 1x2", "One series"]
    assert sum(1 for hv in stages[0].viewports if hv.display_set) == 2


def test_user_protocols_replace_built_ins_and_broken_ones_are_skipped(tmp_path, caplog):
    studies = hanging.Studies(_screening("20260310"))
    stage = hanging.hang(hanging.choose(hanging.load_protocols(), studies), studies)[0]
    mine = hanging.layout_protocol("My 4-up", stage)
    path = hanging.save_protocol(mine, tmp_path)
    assert json.loads(path.read_text())["id"] == "user-my-4-up"
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "grid.json").write_text(json.dumps({"id": "g", "name": "g", "selectors": {}, "stages": [
        {"name": "x", "rows": 2, "columns": 2, "viewports": []}]}))
    protocols = hanging.load_protocols(tmp_path)
    assert "user-my-4-up" in [p.id for p in protocols] and "g" not in [p.id for p in protocols]
    assert "broken.json" in caplog.text and "has 0 viewports for a 2x2 grid" in caplog.text
    again = hanging.hang(next(p for p in protocols if p.id == "user-my-4-up"), studies)[0]
    assert _labels(again) == _labels(stage)


def test_protocol_errors_name_the_problem():
    with pytest.raises(hanging.ProtocolError, match="unknown selector 'nope'"):
        hanging.parse_protocol({"id": "x", "name": "x", "selectors": {}, "stages": [
            {"name": "s", "rows": 1, "columns": 1, "viewports": [{"select": "nope"}]}]})
    with pytest.raises(hanging.ProtocolError, match="lacks 'stages'"):
        hanging.parse_protocol({"id": "x", "name": "x", "selectors": {}})


def test_protocol_text_is_json_with_one_selector_per_line():
    data = json.loads(hanging.BUILT_IN.joinpath("mg-screening-2d.json").read_text())
    text = hanging.protocol_text(data)
    assert json.loads(text) == data
    assert '"RCC": {"study": "current", "kind": ["mg"], "laterality": "R", "view": "CC"}' in text
