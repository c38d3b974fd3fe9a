"""media: one row per uploaded media item

Revision ID: media_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "media_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("media_id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False, server_default=""),
        sa.Column("content_type", sa.String(64), nullable=False, server_default=""),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("entity_type", sa.String(64), nullable=False, server_default=""),
        sa.Column("specs", sa.JSON, nullable=False),
        sa.Column("keep_metadata", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("width", sa.Integer, nullable=False, server_default="0"),
        sa.Column("height", sa.Integer, nullable=False, server_default="0"),
        sa.Column("variants", sa.JSON, nullable=False),
        sa.Column("synced_to_s3", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("job_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_media_owner_sha256", "media", ["owner_id", "sha256"])
    op.create_index("ix_media_created", "media", ["created_at_ms"])
    op.create_index("ix_media_state_updated", "media", ["state", "updated_at_ms"])


def downgrade() -> None:
    op.drop_table("media")
