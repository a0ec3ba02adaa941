"""Synthetic SNDS-shaped extractions with a planted truth (the engine of ``oncopipe generate``).

Modules: ``parameters`` (planted figures), ``geography``, ``hospitals``, ``drugs``, ``clinical_codes``
(reference data), ``population``, ``deaths``, ``hospital_care``, ``endocrine``, ``background_drugs``
(simulation of a chunk of people), ``chunk`` (a chunk's whole history), ``tables`` (cut at a date and shaped
as the landing sources), ``faults`` (raw-gate faults), ``truth``/``truth_report`` (planted truth),
``files`` (deterministic writing) and ``extraction`` (:func:`generate`).

Layer 1. May import: ``oncopipe.landing``, ``oncopipe.contracts``, ``oncopipe.methods``.
"""
