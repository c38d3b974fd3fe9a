"""queues and queue_members remember the source (Asterisk server) they came from

A resync (replace_all) from one Asterisk server replaces that server's configuration only;
rows written before this revision belong to no source ('') and are replaced by any.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.add_column(sa.Column("source_id", sa.String(128), nullable=False, server_default=""))
    with op.batch_alter_table("queue_members") as batch:
        batch.add_column(sa.Column("source_id", sa.String(128), nullable=False, server_default=""))
    op.create_index("ix_queues_source_id", "queues", ["source_id"])
    op.create_index("ix_queue_members_source_id", "queue_members", ["source_id"])


def downgrade() -> None:
    op.drop_index("ix_queue_members_source_id", table_name="queue_members")
    op.drop_index("ix_queues_source_id", table_name="queues")
    with op.batch_alter_table("queue_members") as batch:
        batch.drop_column("source_id")
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("source_id")
