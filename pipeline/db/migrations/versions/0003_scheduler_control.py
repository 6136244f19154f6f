"""Scheduler control: the stopped state beside paused, and one run per tick.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduler_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stopped", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("scheduler_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduler_run_tick_id"), ["tick_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("scheduler_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduler_run_tick_id"))
    with op.batch_alter_table("scheduler_state", schema=None) as batch_op:
        batch_op.drop_column("stopped_at")
        batch_op.drop_column("stopped")
