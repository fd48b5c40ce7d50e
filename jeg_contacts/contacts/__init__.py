"""The stakeholder directory's core records: organisations, contacts, topics, consent."""
