"""Initial schema: clinics, users, patients, web sessions, audit entries.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("clinics", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(200), nullable=False, unique=True))
    op.create_table("patients", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("clinic_id", sa.Integer, sa.ForeignKey("clinics.id"),
                              nullable=False),
                    sa.Column("display_name", sa.String(200), nullable=False))
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("clinic_id", sa.Integer, sa.ForeignKey("clinics.id"),
                              nullable=False),
                    sa.Column("username", sa.String(100), nullable=False, unique=True),
                    sa.Column("role", sa.String(20), nullable=False),
                    sa.Column("password_hash", sa.String(200), nullable=False),
                    sa.Column("active", sa.Boolean, nullable=False),
                    sa.Column("failed_logins", sa.Integer, nullable=False),
                    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
                    sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"),
                              nullable=True))
    op.create_table("web_sessions", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
                    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
                    sa.Column("csrf_token", sa.String(64), nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False))
    op.create_table("audit_entries",
                    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("at", sa.String(40), nullable=False),
                    sa.Column("actor", sa.String(100), nullable=False),
                    sa.Column("action", sa.String(100), nullable=False),
                    sa.Column("subject", sa.String(100), nullable=False),
                    sa.Column("detail", sa.JSON, nullable=False),
                    sa.Column("prev", sa.String(64), nullable=False),
                    sa.Column("mac", sa.String(64), nullable=False),
                    sa.Column("note", sa.Text, nullable=True))


def downgrade() -> None:
    for table in ("audit_entries", "web_sessions", "users", "patients", "clinics"):
        op.drop_table(table)
