"""``users.merged_into``: an index over the wallets joined into another only.

The plain index stored a NULL for every wallet that was never joined (nearly all of them):
a watch-time tick that creates 50,000 wallets spent ~25% of that insert on it (README, "Why
the settings are what they are"). Every query that looks a wallet up by ``merged_into = ?``
(the wallets joined into one, a link re-pointing earlier ones) or lists the joined ones
(``IS NOT NULL``, ``db verify``) can still use the partial index; ``IS NULL`` never could use
it to any profit (it matched nearly every row).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_users_merged_into"
WHEN_SET = sa.text("merged_into IS NOT NULL")


def upgrade() -> None:
    op.drop_index(NAME, table_name="users")
    op.create_index(
        NAME, "users", ["merged_into"], sqlite_where=WHEN_SET, postgresql_where=WHEN_SET
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="users")
    op.create_index(NAME, "users", ["merged_into"])
