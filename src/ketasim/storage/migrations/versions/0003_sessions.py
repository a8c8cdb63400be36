"""Monitored sessions, their events, and the clinic's monitoring thresholds.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("clinics") as batch:
        batch.add_column(sa.Column("spo2_min", sa.Float, nullable=True))
        batch.add_column(sa.Column("moaas_alert_max", sa.Integer, nullable=True))
    op.create_table(
        "monitored_sessions", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False,
                  index=True),
        sa.Column("compound", sa.String(20), nullable=False),
        sa.Column("rems_enrolled", sa.Boolean, nullable=False),
        sa.Column("started_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("form_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("form_submitted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "session_events", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Integer, sa.ForeignKey("monitored_sessions.id"),
                  nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("recorded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False))


def downgrade() -> None:
    op.drop_table("session_events")
    op.drop_table("monitored_sessions")
    with op.batch_alter_table("clinics") as batch:
        batch.drop_column("moaas_alert_max")
        batch.drop_column("spo2_min")
