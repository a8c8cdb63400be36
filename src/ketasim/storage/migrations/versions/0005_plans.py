"""Treatment plans with their forecasts.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "treatment_plans", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False,
                  index=True),
        sa.Column("protocol", sa.String(40), nullable=False),
        sa.Column("regimen", sa.String(300), nullable=False),
        sa.Column("indication", sa.String(40), nullable=False),
        sa.Column("weight_kg", sa.Float, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("forecast", sa.JSON, nullable=False))


def downgrade() -> None:
    op.drop_table("treatment_plans")
