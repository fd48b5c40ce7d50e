"""Background jobs: one durable table that `flask worker` drains

Revision ID: b7e3f1a2c9d4
Revises: a304ec79f653
Create Date: 2026-12-10 10:00:00.000000

Imports, housekeeping and scheduled sends run as rows of this table, claimed under a lease
like deliveries, instead of threads of the web process.
"""
from datetime import UTC, datetime

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
    _queue_scheduled_starts()


def _queue_scheduled_starts():
    """Announcements scheduled before this revision get the job that starts them (the
    worker used to poll for them)."""
    utc = sa.DateTime(timezone=True)
    announcements = sa.table(
        'announcements',
        sa.column('id', sa.Integer),
        sa.column('status', sa.String),
        sa.column('scheduled_at', utc),
        sa.column('created_by_id', sa.Integer),
    )
    jobs = sa.table(
        'jobs',
        *(sa.column(name, sa.Integer) for name in ('attempts', 'max_attempts', 'created_by_id')),
        *(sa.column(name, sa.String) for name in ('kind', 'status', 'subject')),
        sa.column('params', sa.JSON),
        sa.column('cancel_requested', sa.Boolean),
        *(sa.column(name, utc) for name in ('run_after', 'created_at')),
    )
    scheduled = op.get_bind().execute(
        sa.select(announcements.c.id, announcements.c.scheduled_at, announcements.c.created_by_id)
        .where(announcements.c.status == 'scheduled', announcements.c.scheduled_at.is_not(None))
    ).all()
    now = datetime.now(UTC)
    rows = []
    for announcement_id, at, created_by_id in scheduled:
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        rows.append({
            'kind': 'mailing.start_scheduled', 'status': 'queued',
            'subject': f'announcement:{announcement_id}',
            'params': {'announcement_id': announcement_id, 'scheduled_at': at.isoformat()},
            'run_after': at, 'attempts': 0, 'max_attempts': 3, 'cancel_requested': False,
            'created_by_id': created_by_id, 'created_at': now,
        })
    if rows:
        op.bulk_insert(jobs, rows)


def downgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_created_by_id'))
        batch_op.drop_index('ix_jobs_subject')
        batch_op.drop_index('ix_jobs_claim')
    op.drop_table('jobs')
