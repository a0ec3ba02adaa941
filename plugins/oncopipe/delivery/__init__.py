"""Delivery (layer 4): what leaves the platform for researchers, and how.

- ``disclosure``: statistical disclosure control (the small-cell rule, complementary suppression);
- ``figures``: figures drawn from disclosure-controlled tables;
- ``report``: the researcher's HTML and Markdown report;
- ``metadata``: the study and export facts the report, the export folder and the mail share;
- ``export_store``: export folders (tables, figures, report, manifest), their index and verification;
- ``audit``: the append-only audit log; ``notify``: the mail to recipients and operators, sent through
  ``smtp_hook`` (the Airflow SMTP provider's hook, imported only when a mail is sent).

May import: ``oncopipe.warehouse`` and the layers below it.
"""
