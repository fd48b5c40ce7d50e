"""Background jobs: one durable table that `flask worker` drains

Revision ID: b7e3f1a2c9d4
Revises: a304ec79f653
Create Date: 2026-12-10 10:00:00.000000

Imports, housekeeping and scheduled sends run as rows of this table, claimed under a lease
like deliveries, instead of threads of the web process.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e3f1a2c9d4'
down_revision = 'a304ec79f653'
branch_labels = None
depends_on = None

STATUSES = ('queued', 'running', 'done', 'failed', 'cancelled')


def upgrade():
    op.create_table(
        'jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=100), nullable=False),
        sa.Column(
            'status',
            sa.Enum(*STATUSES, name='job_status', native_enum=False, create_constraint=True,
                    length=32),
            nullable=False,
        ),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=True),
        sa.Column('dedupe_key', sa.String(length=200), nullable=True),
        sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('worker_id', sa.String(length=64), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('progress_done', sa.Integer(), nullable=True),
        sa.Column('progress_total', sa.Integer(), nullable=True),
        sa.Column('progress_text', sa.String(length=200), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['created_by_id'], ['users.id'], name=op.f('fk_jobs_created_by_id_users'),
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
        sa.UniqueConstraint('dedupe_key', name=op.f('uq_jobs_dedupe_key')),
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_claim', ['status', 'run_after', 'id'], unique=False)
        batch_op.create_index('ix_jobs_subject', ['subject', 'id'], unique=False)
        batch_op.create_index(
            batch_op.f('ix_jobs_created_by_id'), ['created_by_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_created_by_id'))
        batch_op.drop_index('ix_jobs_subject')
        batch_op.drop_index('ix_jobs_claim')
    op.drop_table('jobs')
