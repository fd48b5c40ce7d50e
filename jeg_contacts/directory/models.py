"""Indexes behind the directory's filters and sort orders (the tables belong to contacts).

The directory counts and pages over narrow rows of ids; these indexes let the database walk
contacts in the order a page is sorted, check the usual conditions without reading the row,
and stop after 50 (see directory.services.directory_page). Where a filter's own index is
the better start (a sign-up date range, a stakeholder type), it carries the sort keys, so
the matches are sorted from the index alone. Measured on 100,000 contacts with
bench/directory.py.
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
# Sorted by sign-up date, including deep pages; with a language filter too. A sign-up date
# range starts here whatever the sort, so the index holds the other sort keys but the (long)
# email address: a year of sign-ups is tens of thousands of rows to sort, and reading each
# one from the table cost several times the sort.
sa.Index(
    "ix_contacts_directory_created_at",
    Contact.created_at,
    Contact.id,
    Contact.status,
    Contact.language,
    Contact.country,
    Contact.search_name,
    Contact.organisation_id,
)
# A status filter with the name or sign-up date sort; sorted by status within a date range.
sa.Index("ix_contacts_status_search_name", Contact.status, Contact.search_name)
sa.Index(
    "ix_contacts_status_created_at",
    Contact.status,
    Contact.created_at,
    Contact.id,
    Contact.search_name,
)
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
# Sorted by organisation: organisations in (name, country, id) order, then each one's
# contacts in (name, id) order, is the page's order without a sort; with a stakeholder-type
# filter, the organisations of a type in that order. A type filter starts from the contacts'
# index whatever the sort, so it also holds the other conditions and sort keys but the
# (long) email address.
sa.Index(
    "ix_organisations_directory_name",
    Organisation.normalised_name,
    Organisation.country,
    Organisation.id,
    Organisation.stakeholder_type,
)
sa.Index(
    "ix_organisations_stakeholder_type_name",
    Organisation.stakeholder_type,
    Organisation.normalised_name,
    Organisation.country,
    Organisation.id,
)
sa.Index(
    "ix_contacts_directory_organisation",
    Contact.organisation_id,
    Contact.search_name,
    Contact.id,
    Contact.status,
    Contact.country,
    Contact.language,
    Contact.created_at,
)
