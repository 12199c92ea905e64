"""Drop two indexes that every chat award paid for and no query reads.

``cooldowns.expires_at`` moved inside its index on every cooldown restarted (one per paid chat
message), and ``transactions.created_at`` grew with every ledger row. Cooldowns are found by
(scope, key), ledger rows by ref or by (user_id, id); a time-range question walks the id order,
as the event log's already does. In scripts/bench.py the two cost 10% of the bytes written to
the WAL and 3.5% of the SQLite thread's instructions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cooldowns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cooldowns_expires_at"))
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_created_at"))


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transactions_created_at"), ["created_at"], unique=False
        )
    with op.batch_alter_table("cooldowns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cooldowns_expires_at"), ["expires_at"], unique=False)
