"""The session records what its analysis prompt left out to fit ``OPENAI_MAX_PROMPT_TOKENS``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("session", sa.Column("prompt_truncation", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("session", "prompt_truncation")
