"""Clinic hardening (issue #11): one open session per patient, one-use form tokens on session
steps and questionnaires, who entered a questionnaire, an anchored audit-chain head, log-in
back-off per client address, and TOTP second factors.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

OPEN = "discharged_at IS NULL AND cancelled_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("clinics") as b:
        b.add_column(sa.Column("require_mfa", sa.Boolean, nullable=False,
                               server_default=sa.false()))
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        b.add_column(sa.Column("totp_enabled", sa.Boolean, nullable=False,
                               server_default=sa.false()))
        b.add_column(sa.Column("recovery_codes", sa.JSON, nullable=True))
    with op.batch_alter_table("web_sessions") as b:
        b.add_column(sa.Column("mfa_passed", sa.Boolean, nullable=False,
                               server_default=sa.true()))
    with op.batch_alter_table("questionnaire_responses") as b:
        b.add_column(sa.Column("entered_as", sa.String(30), nullable=False,
                               server_default="patient"))
        b.add_column(sa.Column("form_token", sa.String(64), nullable=True))
        b.create_unique_constraint("uq_questionnaire_form_token", ["form_token"])
    with op.batch_alter_table("session_events") as b:
        b.add_column(sa.Column("form_token", sa.String(64), nullable=True))
        b.create_unique_constraint("uq_session_event_form_token", ["form_token"])
    with op.batch_alter_table("monitored_sessions") as b:
        b.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    # earlier versions allowed several open sessions: close all but the newest (cancelled,
    # so the record stays and says what happened) before the rule becomes an index
    op.execute(sa.text(
        "UPDATE monitored_sessions SET cancelled_at = started_at WHERE " + OPEN + " AND id < "
        "(SELECT MAX(m2.id) FROM monitored_sessions m2 WHERE m2.patient_id = "
        "monitored_sessions.patient_id AND m2.discharged_at IS NULL)"))
    op.create_index("uq_open_session_per_patient", "monitored_sessions", ["patient_id"],
                    unique=True, sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    op.create_table(
        "audit_head", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("seal", sa.String(64), nullable=False))
    op.create_table(
        "login_throttle", sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_table("audit_head")
    op.drop_index("uq_open_session_per_patient", "monitored_sessions")
    with op.batch_alter_table("monitored_sessions") as b:
        b.drop_column("cancelled_at")
    with op.batch_alter_table("session_events") as b:
        b.drop_constraint("uq_session_event_form_token", type_="unique")
        b.drop_column("form_token")
    with op.batch_alter_table("questionnaire_responses") as b:
        b.drop_constraint("uq_questionnaire_form_token", type_="unique")
        b.drop_column("form_token")
        b.drop_column("entered_as")
    with op.batch_alter_table("web_sessions") as b:
        b.drop_column("mfa_passed")
    with op.batch_alter_table("users") as b:
        b.drop_column("recovery_codes")
        b.drop_column("totp_enabled")
        b.drop_column("totp_secret")
    with op.batch_alter_table("clinics") as b:
        b.drop_column("require_mfa")
