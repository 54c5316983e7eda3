"""Index tables. Columns are named after DICOM keywords so a row is a DICOM answer.

Each level's attribute columns come from spec Table 4-48 (app.dicom.qr_attributes); counts,
Modalities in Study, Retrieve AE Title and Instance Availability are computed at query time,
so there is no derived state to keep in step.
"""

from sqlalchemy import (
    BigInteger, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, MetaData,
    String, Table, Text, UniqueConstraint, func,
)

from sqlalchemy.schema import CreateIndex

from app.dicom.qr_attributes import stored_at

COMPUTED = frozenset({
    "NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries",
    "NumberOfSeriesRelatedInstances", "ModalitiesInStudy", "RetrieveAETitle",
    "InstanceAvailability",
})

# Columns that searches use; indexed.
_INDEXED = {"PatientName", "PatientID", "AccessionNumber", "StudyDate", "Modality",
            "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "StudyID"}

metadata = MetaData()


def attribute_columns(level: str) -> list[str]:
    return [a.column for a in stored_at(level) if a.column not in COMPUTED]


def _attr_columns(level: str, unique: set[str]) -> list[Column]:
    cols = []
    for name in attribute_columns(level):
        cols.append(Column(name, Text, nullable=name not in unique, unique=name in unique,
                           index=name in _INDEXED and name not in unique))
    return cols


patient = Table(
    "patient", metadata,
    Column("id", Integer, primary_key=True),
    # (PatientID, IssuerOfPatientID) identify a patient; NULLs are stored as '' so the
    # unique constraint holds on every database.
    *_attr_columns("patient", set()),
    UniqueConstraint("PatientID", "IssuerOfPatientID", name="uq_patient_identity"),
)

study = Table(
    "study", metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patient.id", ondelete="CASCADE"), nullable=False, index=True),
    *_attr_columns("study", {"StudyInstanceUID"}),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

series = Table(
    "series", metadata,
    Column("id", Integer, primary_key=True),
    Column("study_id", Integer, ForeignKey("study.id", ondelete="CASCADE"), nullable=False, index=True),
    *_attr_columns("series", {"SeriesInstanceUID"}),
)

instance = Table(
    "instance", metadata,
    Column("id", Integer, primary_key=True),
    Column("series_id", Integer, ForeignKey("series.id", ondelete="CASCADE"), nullable=False, index=True),
    *_attr_columns("instance", {"SOPInstanceUID"}),
    Column("TransferSyntaxUID", String(64), nullable=False),
    Column("SpecificCharacterSet", Text),
    Column("path", Text, nullable=False),  # relative to the archive folder
    Column("size", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

remote_node = Table(
    "remote_node", metadata,
    Column("name", String(64), primary_key=True),
    Column("aet", String(16), nullable=False, index=True),
    Column("host", Text, nullable=False),
    Column("port", Integer, nullable=False),
    Column("roles", Text, nullable=False),  # comma-separated services, spec §4.4.1.3
    Column("tls", Integer, nullable=False, default=0),
    Column("certificate", LargeBinary),  # pinned certificate (PEM), spec §4.4.1.1
    Column("cert_sha256", String(64)),
    Column("comment", Text),
    Column("transfer_syntaxes", Text),  # preference, comma-separated UIDs (app.store.nodes)
    Column("class_syntaxes", Text),  # per SOP class: "uid=ts,ts;uid=ts"
    Column("pack_as", String(8)),  # sr | sc (app.dicom.packing)
    Column("printer", Text),  # JSON: a film printer's sizes, layouts, DPI... (app.store.nodes.PrinterSetup)
)

# Bumped whenever the remote node table changes, so a running node reloads it cheaply.
config_version = Table(
    "config_version", metadata,
    Column("name", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Storage commitment results (spec §4.2.1.3.2, filled in by the commitment service): a study
# is safe to delete locally once a remote archive has committed to keep all of it.
commitment = Table(
    "commitment", metadata,
    Column("id", Integer, primary_key=True),
    Column("study_uid", Text, nullable=False, index=True),
    Column("node", String(64), nullable=False),
    Column("instances", Integer, nullable=False),
    Column("committed_at", DateTime(timezone=True), nullable=False),
)

# Our storage commitment requests, one row per instance (app.net.commitment): pending until
# the node's N-EVENT-REPORT says committed or failed (with the Failure Reason).
commit_item = Table(
    "commit_item", metadata,
    Column("id", Integer, primary_key=True),
    Column("transaction_uid", String(64), nullable=False, index=True),
    Column("node", String(64), nullable=False),
    Column("sop_class", String(64), nullable=False),
    Column("sop_instance", String(64), nullable=False, index=True),
    # the archived instance it stands for: itself, or the Enhanced MR split into it / the
    # object packed into it (the browser and the watermark judge archived instances)
    Column("archived_instance", String(64), index=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True)),
)

# Auto-archive routing rules (spec §4.1.2.2; app.jobs.router): what is received (from an
# AE title, of a modality) is sent to a node, with storage commitment if asked. Only what
# arrives after a rule is made (instance id above start_id) is routed.
route = Table(
    "route", metadata,
    Column("name", String(64), primary_key=True),
    Column("to_node", String(64), nullable=False),
    Column("from_aet", String(16)),
    Column("modality", String(16)),
    Column("commit", Integer, nullable=False, default=0),
    Column("enabled", Integer, nullable=False, default=1),
    Column("start_id", Integer, nullable=False, default=0),
)

# What each rule has sent of a study: instances up to last_instance_id.
routed = Table(
    "routed", metadata,
    Column("id", Integer, primary_key=True),
    Column("route", String(64), nullable=False, index=True),
    Column("study_uid", Text, nullable=False),
    Column("last_instance_id", Integer, nullable=False),
    Column("routed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("route", "study_uid", name="uq_routed"),
)

# Users of the workstation (app.store.users); passwords only as scrypt hashes.
app_user = Table(
    "app_user", metadata,
    Column("name", String(64), primary_key=True),
    Column("full_name", Text),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_login", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# The audit trail (app.store.audit).
audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(64), nullable=False, index=True),
    Column("action", String(32), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text),
    Column("patient_id", Text, index=True),
    Column("patient_name", Text),
    Column("study_uid", Text),
)

# Long work: import, send, retrieve, print, export (app.jobs.queue).
job = Table(
    "job", metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("params", Text, nullable=False),   # JSON
    Column("state", Text, nullable=False),    # JSON: what the runner checkpointed
    Column("status", String(16), nullable=False, index=True),
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("message", Text),
    Column("owner", String(64)),
    Column("group_key", Text),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Job groups an operator must restart: a printer whose status stopped its queue (spec §8.6).
job_hold = Table(
    "job_hold", metadata,
    Column("group_key", String(128), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)

# The local copy of the RIS worklists (spec §4.2.1.3.6; app.store.worklist): one row per
# scheduled procedure step of a worklist provider, the columns the dialog filters on, and
# the whole item (every Table 4-24 key) as the provider sent it, re-encoded. An item the provider no longer
# returns is kept, marked vanished.
worklist_item = Table(
    "worklist_item", metadata,
    Column("id", Integer, primary_key=True),
    Column("node", String(64), nullable=False, index=True),
    Column("item_key", Text, nullable=False),  # Study Instance UID | Requested Procedure ID | SPS ID
    Column("status", String(16), nullable=False, index=True),  # scheduled | vanished
    Column("PatientName", Text, index=True),
    Column("PatientID", Text, index=True),
    Column("PatientBirthDate", String(8)),
    Column("PatientSex", String(16)),
    Column("AccessionNumber", Text, index=True),
    Column("StudyInstanceUID", Text, index=True),
    Column("RequestedProcedureID", Text),
    Column("RequestedProcedureDescription", Text),
    Column("ScheduledProcedureStepID", Text),
    Column("ScheduledProcedureStepDescription", Text),
    Column("Modality", String(16), index=True),
    Column("ScheduledStationAETitle", String(16)),
    Column("ScheduledStationName", Text),
    Column("ScheduledProcedureStepStartDate", String(8), index=True),
    Column("ScheduledProcedureStepStartTime", String(16)),
    Column("ScheduledPerformingPhysicianName", Text),
    Column("RequestedProcedurePriority", Text),
    Column("item", LargeBinary, nullable=False),  # the whole item, Explicit VR Little Endian
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("node", "item_key", name="uq_worklist_item"),
)

# Each worklist provider's last query: when it last succeeded, and what went wrong since.
worklist_query = Table(
    "worklist_query", metadata,
    Column("node", String(64), primary_key=True),
    Column("last_attempt", DateTime(timezone=True)),
    Column("last_success", DateTime(timezone=True)),
    Column("last_count", Integer),
    Column("last_error", Text),
)

Index("ix_study_date_patient", study.c.StudyDate, study.c.patient_id)

# Matching folds case (app.store.matching narrows with lower(column) = value), so the keys
# asked for one exact value are indexed folded too. Not Modality: SQLite's planner then
# probes series by modality inside the correlated subqueries, a thousand times slower.
for _table, _column in ((patient, "PatientID"), (study, "AccessionNumber"), (study, "StudyID")):
    Index(f"ix_{_table.name}_{_column}_folded", func.lower(_table.c[_column]))


# A column added later whose rows of before take another column's value.
_FILLED_FROM = {("commit_item", "archived_instance"): "sop_instance"}


def ensure_columns(engine) -> None:
    """Nullable columns added since a database was created (create_all only makes missing
    tables): ALTER TABLE ... ADD COLUMN, which every database we support knows."""
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateColumn
    found = inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in found.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have and c.nullable]
        if missing:
            with engine.begin() as conn:
                for column in missing:
                    ddl = CreateColumn(column).compile(dialect=engine.dialect)
                    conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}')
                    if source := _FILLED_FROM.get((table.name, column.name)):
                        conn.exec_driver_sql(f'UPDATE "{table.name}" SET "{column.name}" = "{source}"')


def ensure_indexes(engine) -> None:
    """Indexes added since a database was created (create_all only makes missing tables)."""
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            for index in table.indexes:
                conn.execute(CreateIndex(index, if_not_exists=True))
