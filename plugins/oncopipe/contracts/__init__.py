"""Contracts (bottom layer): what the layers agree on, and where the platform reads and writes.

- ``sources``: the landing contract (SNDS-shaped sources, their folders, columns and types);
- ``marts``: the mart contract (the published tables studies read, with their columns and types);
- ``results``: what a study analysis returns, before disclosure control and export;
- ``settings``: locations and options from environment variables.

May import: nothing of oncopipe outside this subpackage.
"""
