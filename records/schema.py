"""The tables as the queries see them (the migrations in records/migrations create them)."""
from sqlalchemy import Column, Float, Integer, MetaData, Table, Text

metadata = MetaData()

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("history", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("refused", Integer, nullable=False),
    Column("citations", Text, nullable=False),
    Column("vote", Text, nullable=False),
    Column("comment", Text, nullable=False),
)

questions = Table(
    "questions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("resolved_question", Text, nullable=False),
    Column("reply", Text, nullable=False),
    Column("confidence", Float),
    Column("report", Text, nullable=False),
    Column("citations", Text, nullable=False),
    Column("suggestions", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("channel", Text, nullable=False),
    Column("vote", Text),
    Column("feedback_id", Integer),
)
