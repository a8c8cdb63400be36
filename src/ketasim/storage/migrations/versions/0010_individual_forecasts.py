"""In the clinic (issue #14 item 5): the individual forecast cache, keyed by the patient and
the version of the data it was computed from, and the next sessions a prescriber accepted
into a plan from it.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "individual_forecasts", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False,
                  index=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("forecast", sa.JSON, nullable=True),
        sa.Column("recommendation", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("patient_id", "version", name="uq_individual_forecast_version"))
    op.create_table(
        "planned_sessions", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False,
                  index=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("treatment_plans.id"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("compound", sa.String(20), nullable=False),
        sa.Column("route", sa.String(30), nullable=False),
        sa.Column("dose_mg", sa.Float, nullable=False),
        sa.Column("duration_min", sa.Float, nullable=True),
        sa.Column("interval_days", sa.Float, nullable=False),
        sa.Column("sessions", sa.Integer, nullable=False),
        sa.Column("data_version", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("accepted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False))


def downgrade() -> None:
    op.drop_table("planned_sessions")
    op.drop_table("individual_forecasts")
