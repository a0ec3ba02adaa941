"""Landing (layer 1): extractions as they lie in the landing folder, and reference tables.

- ``layout``: where an extraction lies (``<landing>/<source>/extraction=<date>/``) and how to read its part files;
- ``lifetables``: general-population life tables (built, or loaded from INSEE's files).

May import: ``oncopipe.contracts``, ``oncopipe.methods``.
"""
