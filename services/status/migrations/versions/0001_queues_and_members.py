"""queues and queue_members: the static queue configuration

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queues",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("strategy", sa.String(64), nullable=False, server_default=""),
        sa.Column("max_callers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("weight", sa.Integer, nullable=False, server_default="0"),
        sa.Column("service_level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float, nullable=False, server_default="0"),
    )
    op.create_table(
        "queue_members",
        sa.Column("queue_name", sa.String(128), primary_key=True),
        sa.Column("interface", sa.String(256), primary_key=True),
        sa.Column("member_name", sa.String(256), nullable=False, server_default=""),
        sa.Column("state_interface", sa.String(256), nullable=False, server_default=""),
        sa.Column("membership", sa.String(16), nullable=False, server_default=""),
        sa.Column("penalty", sa.Integer, nullable=False, server_default="0"),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("paused_reason", sa.String(256), nullable=False, server_default=""),
        sa.Column("ringinuse", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("wrapup_time", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float, nullable=False, server_default="0"),
    )
    op.create_index("ix_queue_members_interface", "queue_members", ["interface"])


def downgrade() -> None:
    op.drop_index("ix_queue_members_interface", table_name="queue_members")
    op.drop_table("queue_members")
    op.drop_table("queues")
