"""Drug levels in the clinic (issue #14): a patient's measured levels (ng/mL of one analyte,
when the sample was drawn, who entered it), read by the individual forecast.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "drug_levels", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False,
                  index=True),
        sa.Column("analyte", sa.String(40), nullable=False),
        sa.Column("value_ng_ml", sa.Float, nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entered_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("form_token", sa.String(64), nullable=True),
        sa.UniqueConstraint("form_token", name="uq_drug_levels_form_token"))


def downgrade() -> None:
    op.drop_table("drug_levels")
