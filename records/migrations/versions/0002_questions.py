"""The question log: what citizens asked, the kind of reply, what it cited, how long it took, and its vote.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Text, nullable=False),  # ISO 8601 UTC
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("resolved_question", sa.Text, nullable=False, server_default=""),  # a follow-up as understood
        sa.Column("reply", sa.Text, nullable=False),  # answer | related | refusal
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("report", sa.Text, nullable=False, server_default=""),  # the report asked or cited first
        sa.Column("citations", sa.Text, nullable=False, server_default="[]"),  # JSON [{n, source, section, chunk_id}]
        sa.Column("suggestions", sa.Text, nullable=False, server_default="[]"),  # JSON: sections a refusal suggested
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),  # page | api | rest
        sa.Column("vote", sa.Text, nullable=True),  # up | down, once a citizen votes
        sa.Column("feedback_id", sa.Integer, nullable=True),  # the feedback row of that vote
        sa.CheckConstraint("reply IN ('answer', 'related', 'refusal')", name="questions_reply"),
        sa.CheckConstraint("vote IS NULL OR vote IN ('up', 'down')", name="questions_vote"),
    )
    op.create_index("questions_created_at", "questions", ["created_at"])
    op.create_index("questions_reply", "questions", ["reply", "created_at"])


def downgrade() -> None:
    op.drop_index("questions_reply", table_name="questions")
    op.drop_index("questions_created_at", table_name="questions")
    op.drop_table("questions")
