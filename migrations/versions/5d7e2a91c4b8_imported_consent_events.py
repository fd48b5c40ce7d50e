"""Consent log: an "imported" action, and no privacy notice version for events that were not
the person's own act

Revision ID: 5d7e2a91c4b8
Revises: 65144dce0767
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d7e2a91c4b8'
down_revision = '65144dce0767'
branch_labels = None
depends_on = None

OLD_ACTIONS = ('signup', 'confirm', 'preferences_changed', 'resubscribe', 'unsubscribe', 'erase')
NEW_ACTIONS = (*OLD_ACTIONS, 'imported')


def _action_type(actions):
    return sa.Enum(
        *actions, name='consent_action', native_enum=False, create_constraint=True, length=32
    )


def upgrade():
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.alter_column(
            'action',
            existing_type=_action_type(OLD_ACTIONS),
            type_=_action_type(NEW_ACTIONS),
            existing_nullable=False,
        )
        batch_op.alter_column(
            'wording_version', existing_type=sa.String(length=20), nullable=True
        )


def downgrade():
    # Imported events become what the log used to say of imports, under the notice of the time.
    op.execute(
        "UPDATE consent_events SET action = 'signup', wording_version = '2026-11' "
        "WHERE action = 'imported'"
    )
    op.execute("UPDATE consent_events SET wording_version = '2026-11' WHERE wording_version IS NULL")
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.alter_column(
            'wording_version', existing_type=sa.String(length=20), nullable=False
        )
        batch_op.alter_column(
            'action',
            existing_type=_action_type(NEW_ACTIONS),
            type_=_action_type(OLD_ACTIONS),
            existing_nullable=False,
        )
