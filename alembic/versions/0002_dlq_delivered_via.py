"""Record the fallback target a dead-lettered job was last sent to.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("publishing_dlq") as batch:
        batch.add_column(sa.Column("delivered_via", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("publishing_dlq") as batch:
        batch.drop_column("delivered_via")
