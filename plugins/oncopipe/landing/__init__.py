"""Landing (layer 1): extractions as they lie in the landing folder, and reference tables.

- ``layout``: where an extraction lies (``<landing>/<source>/extraction=<date>/``) and how to read its part files;
- ``lifetables``: general-population life tables (built, or loaded from INSEE's files);
- ``importer``: a delivered extract (the insurer's CSV / Parquet / SAS files) checked against the landing contract,
  converted and landed atomically (``oncopipe import``).

May import: ``oncopipe.contracts``, ``oncopipe.methods``.
"""
