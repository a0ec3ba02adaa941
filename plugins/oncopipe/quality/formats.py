"""Code formats and value sets of the landing contract, as the raw gate checks them.

One place for the regular expressions and value sets, so the suites (``suites.py``), their SQL
(``line_rules.py``, which also holds the SQL twin of :func:`is_valid_cip13`) and the tests agree. The formats
are those of the team brief: ICD-10 without dot (``C509``), ICD-O-3 topography with dot (``C50.9``), ATC
level 5 (``L02BA01``), CIP13 (13 digits starting ``34009`` with an EAN-13 check digit), CCAM (``QEFA003``),
department padded to 3 characters (``075``, ``02A``, ``971``), FINESS (9 characters). The regular
expressions are evaluated by DuckDB (RE2, search semantics, hence the anchors).
"""

from __future__ import annotations

ICD10 = r"^[A-Z][0-9]{2}[0-9A-Z]{0,3}$"
ICDO3_TOPOGRAPHY = r"^C[0-9]{2}\.[0-9]$"
ICDO3_MORPHOLOGY = r"^[0-9]{4}/[0-9]$"
ATC7 = r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$"
CCAM = r"^[A-Z]{4}[0-9]{3}$"
FINESS = r"^[0-9][0-9AB][0-9]{7}$"
NIR_PSA = r"^[0-9A-Z]{17}$"
"""BEN_NIR_PSA / NIR_ANO_17: the SNDS dictionary's CHAR(17) pseudonym, upper-case letters and digits only (the
hash FOIN produces); a NUL byte, a space or a lower-case letter makes it silently another person."""
COMMUNE = r"^[0-9]{3}$"
YEAR = r"^(19|20)[0-9]{2}$"
MONTH = r"^(0[1-9]|1[0-2])$"
ISO_DATE = "%Y-%m-%d"

#: Metropolitan departments 001..095 (no 020 since Corsica was split), Corsica 02A/02B, overseas 971..976.
DEPARTMENTS: tuple[str, ...] = tuple(
    [f"{n:03d}" for n in range(1, 96) if n != 20] + ["02A", "02B"] + [str(n) for n in range(971, 977)]
)
SEX_CODES: tuple[int, ...] = (1, 2, 0, 9)
DPN_QLF_CODES: tuple[int, ...] = (0, 71)
STAGES: tuple[str, ...] = ("I", "II", "III", "IV", "X")
#: PRS_NAT_REF natures of a claim line with drug lines (IR_NAT_V nomenclature: 3317 = pharmacy dispensing of a
#: CIP13-coded drug).
PHARMACY_NATURES: tuple[int, ...] = (3317,)
#: PRS_NAT_REF natures of the extract's claim lines (ER_PRS_F): the pharmacy natures and the GP consultation (1111,
#: a claim line with no drug line). Widen this set with the extract specification.
DCIR_NATURES: tuple[int, ...] = (1111, *PHARMACY_NATURES)


def is_valid_cip13(value: object) -> bool:
    """Whether ``value`` is a CIP13: 13 digits, prefix 34009, valid EAN-13 check digit.

    Example:
        >>> is_valid_cip13("3400930000001"), is_valid_cip13("3400930000002")
        (False, False)
        >>> is_valid_cip13("3400935955838")
        True
    """
    if not isinstance(value, str) or len(value) != 13 or not value.isdigit() or not value.startswith("34009"):
        return False
    weighted = sum(int(ch) * (3 if i % 2 else 1) for i, ch in enumerate(value[:12]))
    return (10 - weighted % 10) % 10 == int(value[12])
