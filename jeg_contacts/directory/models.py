"""Indexes behind the directory's filters and sort orders (the tables belong to contacts).

The directory counts and pages over narrow rows of ids; these indexes let the database walk
contacts in the order a page is sorted, check the usual conditions without reading the row,
and stop after 50 (see directory.services.directory_page). Measured on 100,000 contacts.
"""

import sqlalchemy as sa

from jeg_contacts.contacts.models import Contact, Organisation

# Sorted by name (the default) or searched: id keeps the (name, id) order of the page, the
# rest answers "not erased" and the free-text search without touching the table.
sa.Index(
    "ix_contacts_directory_name",
    Contact.search_name,
    Contact.id,
    Contact.status,
    Contact.email_key,
    Contact.organisation_id,
)
# Sorted by sign-up date, including deep pages.
sa.Index("ix_contacts_directory_created_at", Contact.created_at, Contact.id, Contact.status)
# A status filter with the name or sign-up date sort.
sa.Index("ix_contacts_status_search_name", Contact.status, Contact.search_name)
sa.Index("ix_contacts_status_created_at", Contact.status, Contact.created_at)
# Country and language filters, alone or with a status, sorted by name; also their counts.
sa.Index(
    "ix_contacts_country_status_search_name", Contact.country, Contact.status, Contact.search_name
)
sa.Index(
    "ix_contacts_language_status_search_name",
    Contact.language,
    Contact.status,
    Contact.search_name,
)
# Stakeholder-type filter: the organisations of a type, then their contacts.
sa.Index("ix_organisations_stakeholder_type", Organisation.stakeholder_type)
