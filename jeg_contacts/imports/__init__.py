"""Importing contact lists from CSV and XLSX files: upload, map, dry run, commit."""
