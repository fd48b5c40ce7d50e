"""Who did what to which record, and when: written in the same transaction as the change."""
