"""Inventory: hosts, groups, labels, target selectors and importers.

Pure cores (``hosts``, ``selectors``, ``importers``) take values and return values; ``service`` keeps
them in the database. Imports: ``storage``, ``config``, ``errors``.
"""
