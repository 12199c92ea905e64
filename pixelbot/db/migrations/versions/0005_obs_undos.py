"""OBS undos that an outage left pending: a timed change (a scene to switch back to, a source
to hide, a filter to restore) is put back when OBS is reachable again, even after a restart.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelbot.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "obs_undos",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("what", sa.String(length=300), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("check", sa.JSON(), nullable=False),
        sa.Column("created_at", pixelbot.db.types.UTCDateTime(), nullable=False),
        sa.Column("settled_at", pixelbot.db.types.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["queue_items.id"], name=op.f("fk_obs_undos_item_id_queue_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_obs_undos")),
    )


def downgrade() -> None:
    op.drop_table("obs_undos")
