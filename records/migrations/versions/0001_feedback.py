"""Citizens' votes and comments: the table the hand-written SQLite store made (PRAGMA user_version 1).

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Text, nullable=False),  # ISO 8601 UTC, 2026-11-25T00:10:00+00:00
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("history", sa.Text, nullable=False, server_default="[]"),  # JSON [{"question", "answer"}, ...]
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
        sa.Column("citations", sa.Text, nullable=False, server_default="[]"),  # JSON [Citation.to_dict(), ...]
        sa.Column("vote", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("refused IN (0, 1)", name="feedback_refused_bool"),
        sa.CheckConstraint("vote IN ('up', 'down')", name="feedback_vote"),
    )
    op.create_index("feedback_created_at", "feedback", ["created_at"])
    if op.get_bind().dialect.name == "sqlite":
        # What the hand-written store checked: an older ReportQA still opens this file's feedback table.
        op.execute("PRAGMA user_version = 1")


def downgrade() -> None:
    op.drop_index("feedback_created_at", table_name="feedback")
    op.drop_table("feedback")
