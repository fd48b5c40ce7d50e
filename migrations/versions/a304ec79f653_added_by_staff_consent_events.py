"""Consent log: an "added_by_staff" action, for contacts the secretariat adds by hand

Revision ID: a304ec79f653
Revises: 331dcf6d6696
Create Date: 2026-12-04 10:00:00.000000

Contacts added in the back office no longer get "signup" and "confirm" events they never
performed; they get one "added_by_staff" event, with no privacy notice version.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a304ec79f653'
down_revision = '331dcf6d6696'
branch_labels = None
depends_on = None

OLD_ACTIONS = (
    'signup', 'confirm', 'preferences_changed', 'resubscribe', 'unsubscribe', 'erase', 'imported'
)
NEW_ACTIONS = (*OLD_ACTIONS, 'added_by_staff')


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


def downgrade():
    # The closest the older log can say: staff brought them in, and they saw no notice.
    op.execute("UPDATE consent_events SET action = 'imported' WHERE action = 'added_by_staff'")
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.alter_column(
            'action',
            existing_type=_action_type(NEW_ACTIONS),
            type_=_action_type(OLD_ACTIONS),
            existing_nullable=False,
        )
