"""Reference data of the generator: code formats, check digits, registries, communes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from oncopipe.synth import clinical_codes as C
from oncopipe.synth.drugs import HORMONE_MOLECULES, catalogue, cip13, ean13_check_digit, is_valid_cip13
from oncopipe.synth.geography import DEPARTMENT_CODES, DEPARTMENT_WEIGHTS, communes, registry_lookup
from oncopipe.synth.hospitals import build_hospitals, luhn_digit

ICD10 = re.compile(r"^[A-Z][0-9]{2}[0-9A-Z]{0,2}$")
CCAM = re.compile(r"^[A-Z]{4}[0-9]{3}$")
ATC = re.compile(r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$")
DEPT = re.compile(r"^(0[0-9][0-9]|0(2A|2B)|09[0-5]|97[1-6])$")


def test_ean13_check_digit_known_example():
    assert ean13_check_digit("400638133393") == 1  # the textbook EAN-13 4006381333931
    assert ean13_check_digit("978030640615") == 7  # ISBN-13 9780306406157
    with pytest.raises(ValueError):
        ean13_check_digit("12")


def test_cip13_codes():
    code = cip13(3_312_345)
    assert len(code) == 13 and code.startswith("34009") and is_valid_cip13(code)
    assert not is_valid_cip13(code[:12] + str((int(code[12]) + 1) % 10))
    assert not is_valid_cip13(code[:12])


def test_catalogue_codes_are_valid_and_unique():
    cat = catalogue()
    cips = [p.cip13 for p in cat.presentations]
    assert len(set(cips)) == len(cips)
    assert all(is_valid_cip13(c) for c in cips)
    assert all(ATC.match(p.atc) for p in cat.presentations)
    hormone = [p for p in cat.presentations if p.atc in HORMONE_MOLECULES]
    assert {p.units for p in hormone} <= {28, 30, 84, 90}
    assert set(HORMONE_MOLECULES) == {p.atc for p in hormone}


def test_clinical_code_formats():
    for codes in C.ICD10.values():
        assert all(ICD10.match(c) for c, _ in codes)
    for codes in list(C.SURGERY_ACTS.values()) + list(C.DIAGNOSTIC_ACTS.values()):
        assert all(CCAM.match(c) for c in codes)
    assert all(CCAM.match(a) for _, a, _, _ in C.BACKGROUND_STAYS if a)
    assert all(ICD10.match(d) for d, _, _, _ in C.BACKGROUND_STAYS)


def test_departments_and_registry_coverage():
    assert all(DEPT.match(d) for d in DEPARTMENT_CODES)
    lookup = registry_lookup()
    lung = lookup[:, C.SITES.index("lung")] >= 0      # general registries only
    breast = lookup[:, C.SITES.index("breast")] >= 0  # general registries and the Côte-d'Or breast registry
    stomach = lookup[:, C.SITES.index("stomach")] >= 0  # general and digestive registries
    assert 0.18 < DEPARTMENT_WEIGHTS[lung].sum() < 0.26  # about 22 % of the population
    assert (breast >= lung).all() and breast.sum() == lung.sum() + 1
    assert (stomach >= lung).all() and stomach.sum() == lung.sum() + 3


def test_communes_quintiles_population_weighted():
    com = communes()
    population = com.weight * DEPARTMENT_WEIGHTS[com.department]
    shares = np.array([population[com.quintile == q].sum() for q in range(1, 6)]) / population.sum()
    np.testing.assert_allclose(shares, 0.2, atol=0.03)
    assert all(len(c) == 3 and c.isdigit() for c in com.code)


def test_hospital_finess_numbers():
    h = build_hospitals(5)
    assert len(h.finess) == 60 and len(set(h.finess)) == 60
    assert all(len(f) == 9 for f in h.finess)
    assert 0.15 <= h.fast_track.mean() <= 0.25
    digits = "".join(c if c.isdigit() else "0" for c in h.finess[0][:8])
    assert int(h.finess[0][8]) == luhn_digit(digits)
