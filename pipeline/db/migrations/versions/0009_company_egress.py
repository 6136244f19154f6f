"""Company egress settings: where its credentials may go and which networks its URLs may reach.

``transcript_origins`` lists origins besides the CSV URL's that receive the company's credentials,
``allow_http`` lets them travel over plain http, ``allow_private_networks`` overrides
CSV_ALLOW_PRIVATE_NETWORKS for the company (NULL: the global setting). Existing companies get no extra origin
and no plain http: a company whose CSV URL is http and that has credentials must be allowed http explicitly
(``livedash companies update ID --allow-http``), its imports fail with that advice until then.

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "transcript_origins",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                server_default=sa.text("'[]'"),
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("allow_http", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("allow_private_networks", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_column("allow_private_networks")
        batch_op.drop_column("allow_http")
        batch_op.drop_column("transcript_origins")
