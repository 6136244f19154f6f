"""Seed the AI models and their prices (``docs/session-analysis.md``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Prices are USD per token; they are valid from this instant until a newer row supersedes them.
EFFECTIVE_FROM = datetime(2024, 1, 1, tzinfo=UTC)

#: (name, provider, max tokens, prompt USD/token, completion USD/token)
MODELS = (
    ("gpt-4o", "openai", 128_000, 0.0000025, 0.00001),
    ("gpt-4o-2024-08-06", "openai", 128_000, 0.0000025, 0.00001),
    ("gpt-4-turbo", "openai", 128_000, 0.00001, 0.00003),
    ("gpt-4o-mini", "openai", 128_000, 0.00000015, 0.0000006),
)

# Deterministic ids, so that the downgrade removes exactly what this revision added.
NAMESPACE = uuid.UUID("6f1c2d1e-5b7a-4e59-9a43-2f0c8f7f0a11")

ai_model = sa.table(
    "ai_model",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("provider", sa.String()),
    sa.column("max_tokens", sa.Integer()),
    sa.column("is_active", sa.Boolean()),
)
ai_model_pricing = sa.table(
    "ai_model_pricing",
    sa.column("id", sa.Uuid()),
    sa.column("ai_model_id", sa.Uuid()),
    sa.column("prompt_token_cost", sa.Float()),
    sa.column("completion_token_cost", sa.Float()),
    sa.column("effective_from", sa.DateTime(timezone=True)),
)


def _model_id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"model:{name}")


def _price_id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"price:{name}")


def upgrade() -> None:
    op.bulk_insert(
        ai_model,
        [
            {
                "id": _model_id(name),
                "name": name,
                "provider": provider,
                "max_tokens": max_tokens,
                "is_active": True,
            }
            for name, provider, max_tokens, _, _ in MODELS
        ],
    )
    effective_from = EFFECTIVE_FROM
    if op.get_bind().dialect.name == "sqlite":
        effective_from = effective_from.replace(tzinfo=None)
    op.bulk_insert(
        ai_model_pricing,
        [
            {
                "id": _price_id(name),
                "ai_model_id": _model_id(name),
                "prompt_token_cost": prompt,
                "completion_token_cost": completion,
                "effective_from": effective_from,
            }
            for name, _, _, prompt, completion in MODELS
        ],
    )


def downgrade() -> None:
    op.execute(ai_model_pricing.delete().where(ai_model_pricing.c.id.in_([_price_id(m[0]) for m in MODELS])))
    op.execute(ai_model.delete().where(ai_model.c.id.in_([_model_id(m[0]) for m in MODELS])))
