"""The public archive of sent announcements, with an Atom feed."""
