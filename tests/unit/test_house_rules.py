"""Rules of the house (DESIGN.md) that a test can hold."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_ui_imports_qt():
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "app").parts[:1]:
            continue
        if re.search(r"^\s*(from|import)\s+PySide6", path.read_text(), re.M):
            offenders.append(str(path))
    assert offenders == []


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    setup_cmd, test_cmd = blocks[0].strip(), blocks[1].strip()
    assert "lightbox" in setup_cmd
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1].strip() == test_cmd


def test_no_reference_product_uids_in_code():
    for path in list((ROOT / "app").rglob("*.py")):
        assert "1.3.12.2.1107.5.99" not in path.read_text(), path
