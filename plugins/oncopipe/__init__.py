"""oncopipe: scheduled, quality-gated cancer research on SNDS-shaped data."""

__version__ = "0.1.0"
