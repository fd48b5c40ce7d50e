"""Announcements: why and when the worker paused a send for a relay problem

Revision ID: c4d2e8f1a7b9
Revises: b6e0d4f1a2c3
Create Date: 2026-12-03 18:20:00.000000

A refused login or a TLS failure at the mail relay pauses the send instead of failing every
recipient; staff (and `flask doctor`) read the reason here.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4d2e8f1a7b9'
down_revision = 'b6e0d4f1a2c3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_reason', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('paused_detail', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.drop_column('paused_at')
        batch_op.drop_column('paused_detail')
        batch_op.drop_column('paused_reason')
