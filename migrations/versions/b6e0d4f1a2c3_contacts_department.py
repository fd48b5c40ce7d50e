"""Contacts: a department (or unit) within their organisation

Revision ID: b6e0d4f1a2c3
Revises: b7e3f1a2c9d4
Create Date: 2026-12-05 10:00:00.000000

Optional, one line; the example field of docs/architecture.md ("Adding a contact field").
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b6e0d4f1a2c3'
down_revision = 'b7e3f1a2c9d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('department', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('department')
