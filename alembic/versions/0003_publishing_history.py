"""Delivery history: one row an attempt, and each job's alert once.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "publishing_history_jobs",
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("alert", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_publishing_history_jobs"),
    )
    op.create_index("ix_publishing_history_jobs_created_at", "publishing_history_jobs", ["created_at"])
    op.create_table(
        "publishing_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("via", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("error_type", sa.String(16), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("alert_name", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_publishing_history"),
    )
    op.create_index(
        "ix_publishing_history_fingerprint", "publishing_history", ["fingerprint", "attempted_at"]
    )
    op.create_index("ix_publishing_history_alert_name", "publishing_history", ["alert_name", "attempted_at"])
    op.create_index("ix_publishing_history_target", "publishing_history", ["target", "attempted_at"])
    op.create_index(
        "ix_publishing_history_attempted_at", "publishing_history", [sa.text("attempted_at DESC")]
    )
    op.create_index("ix_publishing_history_job_id", "publishing_history", ["job_id"])


def downgrade() -> None:
    op.drop_table("publishing_history")
    op.drop_table("publishing_history_jobs")
