"""Create the dead-letter table publishing_dlq (docs/design.md (Dead-letter queue)) with its checks and indexes.

Written out by hand rather than from the model, so that this revision stays what it was
when the model moves on; tests/integration/test_migrations.py holds the two together.

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "publishing_dlq"


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("target_name", sa.Text(), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("enriched_alert", json, nullable=False),
        sa.Column("target_config", json, nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("error_type", sa.String(16), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
        sa.Column("replayed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replay_result", sa.String(16), nullable=True),
        sa.Column("replay_job_id", sa.Uuid(), nullable=True),
        sa.Column("replayed_from", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_publishing_dlq"),
        sa.CheckConstraint(
            "error_type IN ('transient', 'permanent', 'unknown')",
            name="ck_publishing_dlq_error_type",
        ),
        sa.CheckConstraint("priority IN ('high', 'medium', 'low')", name="ck_publishing_dlq_priority"),
        sa.CheckConstraint(
            "replay_result IS NULL OR replay_result IN ('success', 'failed', 'skipped')",
            name="ck_publishing_dlq_replay_result",
        ),
        sa.CheckConstraint("retry_count >= 0", name="ck_publishing_dlq_retry_count"),
        sa.CheckConstraint(
            "(replayed AND replayed_at IS NOT NULL AND replay_job_id IS NOT NULL)"
            " OR (NOT replayed AND replayed_at IS NULL AND replay_job_id IS NULL)",
            name="ck_publishing_dlq_replayed",
        ),
    )
    op.create_index("ix_publishing_dlq_job_id", TABLE, ["job_id"], unique=True)
    op.create_index("ix_publishing_dlq_target_name", TABLE, ["target_name"])
    op.create_index("ix_publishing_dlq_error_type", TABLE, ["error_type"])
    op.create_index("ix_publishing_dlq_priority", TABLE, ["priority"])
    op.create_index("ix_publishing_dlq_failed_at", TABLE, [sa.text("failed_at DESC")])
    op.create_index("ix_publishing_dlq_fingerprint", TABLE, ["fingerprint"])
    op.create_index(
        "ix_publishing_dlq_unreplayed",
        TABLE,
        [sa.text("failed_at DESC")],
        postgresql_where=sa.text("replayed = false"),
        sqlite_where=sa.text("replayed = 0"),
    )


def downgrade() -> None:
    for name in (
        "ix_publishing_dlq_unreplayed",
        "ix_publishing_dlq_fingerprint",
        "ix_publishing_dlq_failed_at",
        "ix_publishing_dlq_priority",
        "ix_publishing_dlq_error_type",
        "ix_publishing_dlq_target_name",
        "ix_publishing_dlq_job_id",
    ):
        op.drop_index(name, table_name=TABLE)
    op.drop_table(TABLE)
