"""The drug referential of the synthetic extract (IR_PHA_R subset) and CIP13 codes.

Hormone-therapy presentations (tamoxifen and the three aromatase inhibitors, boxes of 28/30 and 84/90
tablets) plus common background drugs. CIP13 codes are built as real ones: ``34009`` + 7 digits + an EAN-13
check digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def ean13_check_digit(first12: str) -> int:
    """EAN-13 check digit of a 12-digit string (weights 1, 3 alternating from the left)."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"EAN-13 needs 12 digits, got {first12!r}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def cip13(number: int) -> str:
    """The CIP13 code ``34009`` + ``number`` (7 digits) + check digit."""
    first12 = f"34009{number:07d}"
    return first12 + str(ean13_check_digit(first12))


def is_valid_cip13(code: str) -> bool:
    """True if ``code`` is 13 digits starting 34009 with a correct EAN-13 check digit."""
    return (isinstance(code, str) and len(code) == 13 and code.isdigit() and code.startswith("34009")
            and ean13_check_digit(code[:12]) == int(code[12]))


@dataclass(frozen=True)
class Presentation:
    cip13: str
    atc: str
    atc_label: str
    units: int
    label: str
    price: float
    molecule: str


HORMONE_MOLECULES = {"L02BA01": "tamoxifen", "L02BG03": "anastrozole", "L02BG04": "letrozole",
                     "L02BG06": "exemestane"}
HORMONE_CLASS = {"L02BA01": "SERM", "L02BG03": "aromatase_inhibitor", "L02BG04": "aromatase_inhibitor",
                 "L02BG06": "aromatase_inhibitor"}

# (atc, atc label, molecule, [(label, units, price)...])
_HORMONE = (
    ("L02BA01", "TAMOXIFENE", "tamoxifen", [
        ("TAMOXIFÈNE BIOGARAN 20 mg, comprimé pelliculé, boîte de 30", 30, 8.53),
        ("TAMOXIFÈNE BIOGARAN 20 mg, comprimé pelliculé, boîte de 90", 90, 24.12),
        ("TAMOXIFÈNE MYLAN 20 mg, comprimé, boîte de 30", 30, 8.53),
        ("NOLVADEX 20 mg, comprimé pelliculé, boîte de 30", 30, 9.41)]),
    ("L02BG03", "ANASTROZOLE", "anastrozole", [
        ("ARIMIDEX 1 mg, comprimé pelliculé, boîte de 28", 28, 30.60),
        ("ANASTROZOLE ARROW 1 mg, comprimé pelliculé, boîte de 28", 28, 19.71),
        ("ANASTROZOLE ARROW 1 mg, comprimé pelliculé, boîte de 84", 84, 56.66),
        ("ANASTROZOLE SANDOZ 1 mg, comprimé pelliculé, boîte de 30", 30, 20.35)]),
    ("L02BG04", "LETROZOLE", "letrozole", [
        ("FÉMARA 2,5 mg, comprimé pelliculé, boîte de 30", 30, 35.74),
        ("LÉTROZOLE TEVA 2,5 mg, comprimé pelliculé, boîte de 30", 30, 21.47),
        ("LÉTROZOLE TEVA 2,5 mg, comprimé pelliculé, boîte de 90", 90, 61.37),
        ("LÉTROZOLE ZENTIVA 2,5 mg, comprimé pelliculé, boîte de 90", 90, 61.37)]),
    ("L02BG06", "EXEMESTANE", "exemestane", [
        ("AROMASINE 25 mg, comprimé enrobé, boîte de 30", 30, 44.06),
        ("EXÉMESTANE MYLAN 25 mg, comprimé pelliculé, boîte de 30", 30, 26.74),
        ("EXÉMESTANE MYLAN 25 mg, comprimé pelliculé, boîte de 90", 90, 76.33)]),
)

# Background drugs: (atc, label, molecule, chronic?, relative weight, [(label, units, price)...])
_BACKGROUND = (
    ("C10AA05", "ATORVASTATINE", "atorvastatin", True, 1.0, [
        ("ATORVASTATINE BIOGARAN 20 mg, comprimé, boîte de 30", 30, 7.35),
        ("ATORVASTATINE BIOGARAN 20 mg, comprimé, boîte de 90", 90, 20.51)]),
    ("C10AA07", "ROSUVASTATINE", "rosuvastatin", True, 0.8, [
        ("ROSUVASTATINE ARROW 10 mg, comprimé, boîte de 30", 30, 6.62),
        ("ROSUVASTATINE ARROW 10 mg, comprimé, boîte de 90", 90, 18.86)]),
    ("C10AA01", "SIMVASTATINE", "simvastatin", True, 0.4, [
        ("SIMVASTATINE TEVA 20 mg, comprimé, boîte de 28", 28, 5.43)]),
    ("C08CA01", "AMLODIPINE", "amlodipine", True, 1.0, [
        ("AMLODIPINE ZENTIVA 5 mg, gélule, boîte de 30", 30, 2.89),
        ("AMLODIPINE ZENTIVA 5 mg, gélule, boîte de 90", 90, 8.24)]),
    ("C09AA05", "RAMIPRIL", "ramipril", True, 0.8, [
        ("RAMIPRIL BIOGARAN 5 mg, comprimé, boîte de 30", 30, 3.46),
        ("RAMIPRIL BIOGARAN 5 mg, comprimé, boîte de 90", 90, 9.90)]),
    ("C09AA04", "PERINDOPRIL", "perindopril", True, 0.6, [
        ("PÉRINDOPRIL ARROW 4 mg, comprimé, boîte de 30", 30, 5.10)]),
    ("C09CA03", "VALSARTAN", "valsartan", True, 0.5, [
        ("VALSARTAN SANDOZ 80 mg, comprimé, boîte de 30", 30, 7.92)]),
    ("C09CA04", "IRBESARTAN", "irbesartan", True, 0.5, [
        ("IRBÉSARTAN MYLAN 150 mg, comprimé, boîte de 30", 30, 6.88),
        ("IRBÉSARTAN MYLAN 150 mg, comprimé, boîte de 90", 90, 19.61)]),
    ("C03AA03", "HYDROCHLOROTHIAZIDE", "hydrochlorothiazide", True, 0.3, [
        ("ESIDREX 25 mg, comprimé sécable, boîte de 30", 30, 2.04)]),
    ("C07AB07", "BISOPROLOL", "bisoprolol", True, 0.8, [
        ("BISOPROLOL EG 5 mg, comprimé, boîte de 30", 30, 3.05),
        ("BISOPROLOL EG 5 mg, comprimé, boîte de 90", 90, 8.73)]),
    ("A10BA02", "METFORMINE", "metformin", True, 1.0, [
        ("METFORMINE BIOGARAN 1000 mg, comprimé, boîte de 30", 30, 2.97),
        ("METFORMINE BIOGARAN 1000 mg, comprimé, boîte de 90", 90, 8.16)]),
    ("A02BC01", "OMEPRAZOLE", "omeprazole", True, 0.6, [
        ("OMÉPRAZOLE MYLAN 20 mg, gélule, boîte de 28", 28, 4.88)]),
    ("A02BC05", "ESOMEPRAZOLE", "esomeprazole", True, 0.9, [
        ("ÉSOMÉPRAZOLE TEVA 20 mg, gélule, boîte de 28", 28, 5.22),
        ("ÉSOMÉPRAZOLE TEVA 20 mg, gélule, boîte de 84", 84, 14.75)]),
    ("A02BC02", "PANTOPRAZOLE", "pantoprazole", True, 0.6, [
        ("PANTOPRAZOLE ARROW 20 mg, comprimé, boîte de 28", 28, 4.27)]),
    ("H03AA01", "LEVOTHYROXINE SODIQUE", "levothyroxine", True, 0.8, [
        ("LÉVOTHYROX 100 µg, comprimé sécable, boîte de 30", 30, 2.45),
        ("LÉVOTHYROX 100 µg, comprimé sécable, boîte de 90", 90, 6.62)]),
    ("B01AC06", "ACIDE ACETYLSALICYLIQUE", "aspirin", True, 0.8, [
        ("KARDÉGIC 75 mg, poudre pour solution buvable, boîte de 30 sachets", 30, 2.63)]),
    ("B01AF02", "APIXABAN", "apixaban", True, 0.4, [
        ("ÉLIQUIS 5 mg, comprimé pelliculé, boîte de 60", 60, 53.41)]),
    ("N06AB06", "SERTRALINE", "sertraline", True, 0.5, [
        ("SERTRALINE ARROW 50 mg, gélule, boîte de 28", 28, 5.14)]),
    ("N05CF02", "ZOLPIDEM", "zolpidem", True, 0.3, [
        ("ZOLPIDEM BIOGARAN 10 mg, comprimé sécable, boîte de 14", 14, 1.88)]),
    ("N02BE01", "PARACETAMOL", "paracetamol", False, 3.0, [
        ("DOLIPRANE 1000 mg, comprimé, boîte de 8", 8, 1.16),
        ("DOLIPRANE 500 mg, gélule, boîte de 16", 16, 1.16),
        ("EFFERALGAN 1 g, comprimé effervescent, boîte de 8", 8, 1.16)]),
    ("M01AE01", "IBUPROFENE", "ibuprofen", False, 1.0, [
        ("IBUPROFÈNE BIOGARAN 400 mg, comprimé, boîte de 30", 30, 2.24)]),
    ("J01CA04", "AMOXICILLINE", "amoxicillin", False, 1.2, [
        ("AMOXICILLINE BIOGARAN 1 g, comprimé dispersible, boîte de 6", 6, 2.42),
        ("AMOXICILLINE SANDOZ 500 mg, gélule, boîte de 12", 12, 2.06)]),
    ("N02AX02", "TRAMADOL", "tramadol", False, 0.4, [
        ("TRAMADOL ARROW 50 mg, gélule, boîte de 30", 30, 3.41)]),
    ("R03AC02", "SALBUTAMOL", "salbutamol", False, 0.4, [
        ("VENTOLINE 100 µg/dose, suspension pour inhalation, 1 flacon de 200 doses", 1, 3.91)]),
    ("A11CC05", "COLECALCIFEROL", "colecalciferol", False, 0.8, [
        ("ZYMAD 50 000 UI, solution buvable en ampoule, boîte de 1", 1, 1.99)]),
)


@dataclass(frozen=True)
class Catalogue:
    """All presentations plus arrays the vectorised generator indexes into."""

    presentations: tuple[Presentation, ...]
    hormone_by_atc: dict[str, np.ndarray]   # presentation indices per hormone ATC
    chronic: np.ndarray          # presentation indices of chronic background drugs
    chronic_weight: np.ndarray
    acute: np.ndarray
    acute_weight: np.ndarray
    units: np.ndarray
    price: np.ndarray
    cip: np.ndarray              # CIP13 strings, indexed like presentations


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """Build the fixed drug referential (identical for every seed)."""
    presentations: list[Presentation] = []
    hormone: dict[str, list[int]] = {}
    chronic, chronic_w, acute, acute_w = [], [], [], []
    number = 3_300_000
    for atc, atc_label, molecule, packs in _HORMONE:
        for label, units, price in packs:
            number += 7_919
            hormone.setdefault(atc, []).append(len(presentations))
            presentations.append(Presentation(cip13(number), atc, atc_label, units, label, price, molecule))
    for atc, atc_label, molecule, is_chronic, weight, packs in _BACKGROUND:
        for label, units, price in packs:
            number += 6_133
            (chronic if is_chronic else acute).append(len(presentations))
            (chronic_w if is_chronic else acute_w).append(weight / len(packs))
            presentations.append(Presentation(cip13(number), atc, atc_label, units, label, price, molecule))
    cw = np.array(chronic_w)
    aw = np.array(acute_w)
    return Catalogue(
        tuple(presentations), {k: np.array(v) for k, v in hormone.items()},
        np.array(chronic), cw / cw.sum(), np.array(acute), aw / aw.sum(),
        np.array([p.units for p in presentations]), np.array([p.price for p in presentations]),
        np.array([p.cip13 for p in presentations]),
    )
