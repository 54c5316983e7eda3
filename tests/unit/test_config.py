import tomllib

import pytest

from app.config import MAX_PDU_LIMIT, Settings, SettingsError, default_aet


def test_defaults_follow_table_4_53(tmp_path):
    s = Settings.load(tmp_path)
    assert s["node.max_pdu"] == 32768
    assert s["node.max_associations"] == 12
    assert s["node.max_matches"] == 100
    assert s["node.index_batch"] == 20
    assert s["timeouts.association"] == 30
    assert s["timeouts.tcp_data"] == 5
    assert s["timeouts.move_response"] == 1200
    assert s["node.port"] == 11112


def test_default_aet_is_upper_case_host_name_at_most_16():
    aet = default_aet()
    assert aet == aet.upper() and 0 < len(aet) <= 16 and aet.isascii()


def test_set_save_load_roundtrip_is_human_readable(tmp_path):
    s = Settings.load(tmp_path)
    s.set("node.max_pdu", "131072")
    s.set("policy.check_calling_ae", "false")
    s.set("node.aet", "READING1")
    s.save()
    text = (tmp_path / "settings.toml").read_text()
    assert "max_pdu = 131072" in text and "# max parallel receiving associations" in text
    tomllib.loads(text)  # valid TOML
    again = Settings.load(tmp_path)
    assert again["node.max_pdu"] == 131072
    assert again["policy.check_calling_ae"] is False
    assert again["node.aet"] == "READING1"


@pytest.mark.parametrize("key,value", [
    ("node.max_pdu", str(MAX_PDU_LIMIT + 1)),  # spec: at most 512 kB
    ("node.max_pdu", "abc"),
    ("node.port", "0"),
    ("node.aet", "THIS_AE_TITLE_IS_TOO_LONG"),
    ("node.aet", "BAD\\AET"),
    ("tls.mode", "sometimes"),
    ("no.such.key", "1"),
    ("timeouts.move_response", "30"),  # Table 4-53: not configurable
])
def test_bad_values_are_refused_with_a_reason(tmp_path, key, value):
    with pytest.raises(SettingsError) as exc:
        Settings.load(tmp_path).set(key, value)
    assert key in str(exc.value) or "AE title" in str(exc.value)


def test_broken_settings_file_says_where(tmp_path):
    (tmp_path / "settings.toml").write_text("[node\nport = 1")
    with pytest.raises(SettingsError, match="settings.toml"):
        Settings.load(tmp_path)


def test_per_service_address(tmp_path):
    s = Settings.load(tmp_path)
    s.set("node.aet", "MAIN")
    s.set("services.storage.aet", "STORE")
    s.set("services.storage.port", "11200")
    assert s.service_address("storage") == ("STORE", 11200)
    assert s.service_address("verification") == ("MAIN", 11112)


def test_data_home_is_private(tmp_path):
    from app.store.archive import Archive
    archive = Archive(tmp_path / "new-home")
    try:
        assert (tmp_path / "new-home").stat().st_mode & 0o777 == 0o700
    finally:
        archive.close()
