"""Indexes for chart pages at clinic scale (questionnaires and alerts by patient, patients by
clinic).

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_index("ix_questionnaire_responses_patient_id", "questionnaire_responses",
                    ["patient_id"])
    op.create_index("ix_safety_alerts_patient_id", "safety_alerts", ["patient_id"])
    op.create_index("ix_patients_clinic_id", "patients", ["clinic_id"])


def downgrade() -> None:
    op.drop_index("ix_patients_clinic_id", "patients")
    op.drop_index("ix_safety_alerts_patient_id", "safety_alerts")
    op.drop_index("ix_questionnaire_responses_patient_id", "questionnaire_responses")
