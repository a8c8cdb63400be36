"""What people see (issue #17): the clinic's time zone (an IANA name; every time is shown and
entered in it, stored times stay UTC) and the patient's year of birth (the session forecast's
age; unknown when empty).

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("clinics") as b:
        b.add_column(sa.Column("timezone", sa.String(64), nullable=False,
                               server_default="UTC"))
    with op.batch_alter_table("patients") as b:
        b.add_column(sa.Column("birth_year", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patients") as b:
        b.drop_column("birth_year")
    with op.batch_alter_table("clinics") as b:
        b.drop_column("timezone")
