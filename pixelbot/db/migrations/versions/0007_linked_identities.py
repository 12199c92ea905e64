"""One wallet across platforms: ``!link`` codes, and wallets merged into another.

``users.merged_into`` names the wallet a linked one was joined into (its history stays where it
is; anything that still names the old id lands on the new one). ``link_codes`` holds the
one-time codes, hashed, with their expiry and the identity that used them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelbot.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into", ID, nullable=True))
        batch_op.create_index(batch_op.f("ix_users_merged_into"), ["merged_into"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_users_merged_into_users"), "users", ["merged_into"], ["id"]
        )
    op.create_table(
        "link_codes",
        sa.Column("id", ID, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("platform_user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", pixelbot.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pixelbot.db.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", pixelbot.db.types.UTCDateTime(), nullable=True),
        sa.Column("used_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_link_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_link_codes_code_hash")),
    )


def downgrade() -> None:
    op.drop_table("link_codes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_users_merged_into_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_users_merged_into"))
        batch_op.drop_column("merged_into")
