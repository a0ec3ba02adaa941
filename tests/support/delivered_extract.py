"""A small extract written by hand in the delivered shape (not by the generator), for ``oncopipe import`` tests.

The files are named as the insurer names them (IR_BEN_R.csv, ER_PRS_F_2023.csv, ER_PHA_F.csv, T_MCO22B.csv,
T_MCO23B.csv, ki_cci_r_2023.csv), ``;``
separated, DD/MM/YYYY dates (DDMMYYYY in the PMSI), empty fields for null, NUM_ENQ as the pseudonym, extra columns
the platform does not read, two PMSI years, and a text file that is not data (``DELIVERED``, two people).

:func:`platform_delivery` writes a larger one (40 women with breast cancer, 60 lung cancer cases), enough for the
studies to export (tests/integration/test_delivered_platform.py); see its section below.
"""

from __future__ import annotations

from pathlib import Path

DATE = "2024-12-31"
P1, P2 = "A" * 16 + "1", "B" * 16 + "2"

DELIVERED = {
    "IR_BEN_R.csv": (
        "NUM_ENQ;BEN_RNG_GEM;BEN_SEX_COD;BEN_NAI_ANN;BEN_NAI_MOI;BEN_RES_DPT;BEN_RES_COM;BEN_DCD_DTE;BEN_DTE_INS;"
        "BEN_DTE_MAJ;BEN_TOP_CNS\n"
        f"{P1};1;2;1955;03;075;101;;01/01/2010;15/06/2024;1\n"
        f"{P2};1;1;1948;11;069;301;02/08/2023;01/01/2010;20/09/2023;0\n"),
    "IR_PHA_R.csv": (
        "PHA_CIP_C13;PHA_ATC_C07;PHA_ATC_L07;PHA_UNT_NBR_DSES;PHA_NOM_PA;PHA_MED_NOM\n"
        "3400935955838;L02BA01;TAMOXIFENE;30;TAMOXIFÈNE 20 mg, boîte de 30;NOLVADEX\n"),
    # DCIR: claim lines per year (two files, one landing source), drug lines in one file; joined on the nine keys.
    # P1: a tamoxifen dispensing and a GP consultation (no drug line); P2: a dispensing in 2023.
    "ER_PRS_F_2023.csv": (
        "NUM_ENQ;BEN_RNG_GEM;FLX_DIS_DTD;FLX_TRT_DTD;FLX_EMT_TYP;FLX_EMT_NUM;FLX_EMT_ORD;ORG_CLE_NUM;DCT_ORD_NUM;"
        "PRS_ORD_NUM;REM_TYP_AFF;EXE_SOI_DTD;PRS_NAT_REF;DPN_QLF;PSE_SPE_COD;PRS_ACT_QTE\n"
        f"{P2};1;01/04/2023;20/03/2023;1;100;1;010690001;20001;1;1;14/03/2023;3317;0;6;1\n"),
    "ER_PRS_F_2024.csv": (
        "NUM_ENQ;BEN_RNG_GEM;FLX_DIS_DTD;FLX_TRT_DTD;FLX_EMT_TYP;FLX_EMT_NUM;FLX_EMT_ORD;ORG_CLE_NUM;DCT_ORD_NUM;"
        "PRS_ORD_NUM;REM_TYP_AFF;EXE_SOI_DTD;PRS_NAT_REF;DPN_QLF;PSE_SPE_COD;PRS_ACT_QTE\n"
        f"{P1};1;01/02/2024;22/01/2024;1;100;1;010750001;10001;1;1;15/01/2024;3317;0;6;1\n"
        f"{P1};1;01/02/2024;25/01/2024;1;200;1;010750001;10001;1;1;18/01/2024;1111;0;1;1\n"),
    "ER_PHA_F.csv": (
        "FLX_DIS_DTD;FLX_TRT_DTD;FLX_EMT_TYP;FLX_EMT_NUM;FLX_EMT_ORD;ORG_CLE_NUM;DCT_ORD_NUM;PRS_ORD_NUM;REM_TYP_AFF;"
        "PHA_PRS_C13;PHA_ACT_QSN;PHA_ACT_PRU;PHA_PRS_IDE\n"
        "01/02/2024;22/01/2024;1;100;1;010750001;10001;1;1;3400935955838;1;20.51;3595583\n"
        "01/04/2023;20/03/2023;1;100;1;010690001;20001;1;1;3400935955838;2;20.51;3595583\n"),
    "T_MCO22B.csv": (
        "ETA_NUM;RSA_NUM;DGN_PAL;DGN_REL;GRG_GHM;SEJ_NBJ;ENT_MOD;SOR_MOD;SOR_ANN;SOR_MOI;AGE_ANN\n"
        "750000001;0000000001;C509;;09C05J;3;8;8;2022;05;67\n"),
    "T_MCO23B.csv": (
        "ETA_NUM;RSA_NUM;DGN_PAL;DGN_REL;GRG_GHM;SEJ_NBJ;ENT_MOD;SOR_MOD;SOR_ANN;SOR_MOI;AGE_ANN\n"
        "690000002;0000000002;C349;Z511;04M05T;2;8;9;2023;07;74\n"),
    "T_MCO22C.csv": (
        "ETA_NUM;RSA_NUM;NUM_ENQ;EXE_SOI_DTD;EXE_SOI_DTF;NIR_RET;ENT_DAT;SOR_DAT\n"
        f"750000001;0000000001;{P1};02052022;05052022;0;02052022;05052022\n"),
    "T_MCO23C.csv": (
        "ETA_NUM;RSA_NUM;NUM_ENQ;EXE_SOI_DTD;EXE_SOI_DTF;NIR_RET;ENT_DAT;SOR_DAT\n"
        f"690000002;0000000002;{P2};10072023;12072023;0;10072023;12072023\n"),
    "T_MCO23D.csv": "ETA_NUM;RSA_NUM;DGN_ASS_NUM;ASS_DGN;RSS_NUM\n690000002;0000000002;1;C780;1\n",
    "T_MCO22A.csv": "ETA_NUM;RSA_NUM;CDC_ACT;ENT_DAT_DEL;ACV_ACT;PHA_ACT\n750000001;0000000001;QEFA003;1;1;0\n",
    "ki_cci_r_2023.csv": (
        "BEN_IDT_ANO;NUM_ENQ;BEN_DCD_DTE;DCD_CIM_COD;DCD_DPT_COD;BEN_SEX_COD\n"
        f"X1;{P2};02/08/2023;C349;069;1\n"),
    "LISEZMOI.txt": "livraison projet, extraction du 31/12/2024\n",
}


def deliver(folder: Path, files: dict[str, str] = DELIVERED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# --------------------------------------------------------------------------------------------------------------
# A hand-written extract big enough for the studies (tests/integration/test_delivered_platform.py).
#
# The files are written line by line by the explicit loops below (not by the generator), in the delivered shape:
# insurer file names, DD/MM/YYYY dates (DDMMYYYY in the PMSI), NUM_ENQ, one PMSI file per table and year (2020 to
# 2022; T_MCO21A and T_MCO22A, with no act, header-only), an empty field for null (T_MCOaaC's ENT_DAT / SOR_DAT on
# one stay in four), each hospital numbering its stays from 1 again every year (so T_MCO20B and T_MCO21B both hold
# RSA 0000000001 of a hospital, for two people's stays: only the year tells them apart). Every one of its people
# lives in Calvados (department 014, the general registry GEN14):
# - BREAST women B00..B39, registry breast cancer (C50.4) diagnosed in January 2019; tamoxifen (one box of 30
#   tablets a dispensing) from 30 days after the diagnosis. Even-numbered women refill every 30 to 33 days until
#   the data end; odd-numbered ones take 6 to 12 boxes, then stop: two adherence trajectories.
# - LUNG cases L00..L59, registry lung cancer (C34.1), diagnosed two weeks apart from 2020-01-10; a diagnostic
#   stay (DP C341, with a chest CT scan in 2020) 3 days later at one of two hospitals (30 cases each), a
#   chemotherapy session (DP Z511) 12 to 57 days after the diagnosis (``lung_chemo_delay``; one in five never);
#   two thirds die 100 to 1,000 days after it, by 2024-10 (IR_BEN_R and KI_CCI_R), the others are censored at the
#   data end: every delay group of the landmark analysis holds deaths and survivors.
# - DCIR as the insurer delivers it: a claim line per box in ER_PRS_F_<year>.csv (one file per year of the care
#   date; the person under NUM_ENQ, the prescriber an oncologist for one woman in five) and its drug line in
#   ER_PHA_F.csv, joined by the nine DCIR keys; a GP consultation (PRS_NAT_REF 1111, no drug line) per woman.

import datetime as _dt  # noqa: E402 - the section's own imports, kept next to it

PLATFORM_DATE = "2024-12-31"
BREAST, LUNG = 40, 60  # 60: the survival study fits a Cox model for a site of 50 cases or more
HOSPITALS = ("140000019", "140000027")
TAMOXIFEN = "3400930000014"  # 34009 + 3000001 + the EAN-13 check digit


_PMSI_HEADERS = {"B": "ETA_NUM;RSA_NUM;DGN_PAL;DGN_REL;GRG_GHM;SEJ_NBJ;ENT_MOD;SOR_MOD;SOR_ANN",
                 "C": "ETA_NUM;RSA_NUM;NUM_ENQ;EXE_SOI_DTD;EXE_SOI_DTF;NIR_RET;ENT_DAT;SOR_DAT",
                 "D": "ETA_NUM;RSA_NUM;DGN_ASS_NUM;ASS_DGN",
                 "A": "ETA_NUM;RSA_NUM;CDC_ACT;ENT_DAT_DEL;ACV_ACT"}


def _person(prefix: str, i: int) -> str:
    return f"{prefix}{i:016d}"


def _dmy(day: _dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _pmsi(day: _dt.date) -> str:
    return day.strftime("%d%m%Y")


def _breast_diagnosis(i: int) -> _dt.date:
    return _dt.date(2019, 1, 3 + i % 25)


def _lung_diagnosis(i: int) -> _dt.date:
    return _dt.date(2020, 1, 10) + _dt.timedelta(days=14 * i)


def lung_death(i: int) -> _dt.date | None:
    death = _lung_diagnosis(i) + _dt.timedelta(days=100 + (37 * i) % 900)
    return None if i % 3 == 0 or death > _dt.date(2024, 10, 31) else death


def lung_chemo_delay(i: int) -> int | None:
    """Days from case ``i``'s diagnosis to its chemotherapy session (None: never treated)."""
    if i % 5 == 2:
        return None
    return 12 + 10 * (i % 2) + i % 6 + (30 if i % 5 == 0 else 0)


def breast_dispensings(i: int) -> list[_dt.date]:
    """The care dates of woman ``i``'s tamoxifen boxes."""
    day, out = _breast_diagnosis(i) + _dt.timedelta(days=30), []
    boxes = 10_000 if i % 2 == 0 else 6 + (i // 2) % 7
    while len(out) < boxes and day <= _dt.date(2024, 11, 30):
        out.append(day)
        day += _dt.timedelta(days=30 + i % 4)
    return out


def platform_delivery(folder: Path) -> Path:
    """Write the delivered files of the platform extract into ``folder``."""
    files: dict[str, list[str]] = {
        "IR_BEN_R.csv": ["NUM_ENQ;BEN_RNG_GEM;BEN_SEX_COD;BEN_NAI_ANN;BEN_NAI_MOI;BEN_RES_DPT;BEN_RES_COM;"
                         "BEN_DCD_DTE;BEN_DTE_INS;BEN_DTE_MAJ;BEN_TOP_CNS"],
        "IR_PHA_R.csv": ["PHA_CIP_C13;PHA_ATC_C07;PHA_ATC_L07;PHA_UNT_NBR_DSES;PHA_NOM_PA",
                         f"{TAMOXIFEN};L02BA01;TAMOXIFENE;30;TAMOXIFENE 20 mg, boîte de 30"],
        "registry_cases.csv": ["REG_ID;REG_CAS_ID;NUM_ENQ;DAT_DIAG;TOP_ICDO3;MOR_ICDO3;CIM10;STADE;BASE_DIAG"],
        "KI_CCI_R.csv": ["BEN_IDT_ANO;NUM_ENQ;BEN_DCD_DTE;DCD_CIM_COD;DCD_DPT_COD"],
        "ir_geo_fdep.csv": ["DPT_COD;COM_COD;FDEP_IDX;FDEP_QUINT"]
                           + [f"014;{100 + q};{q - 3}.25;{q}" for q in range(1, 6)],
    }
    claim_header = ("FLX_DIS_DTD;FLX_TRT_DTD;FLX_EMT_TYP;FLX_EMT_NUM;FLX_EMT_ORD;ORG_CLE_NUM;DCT_ORD_NUM;PRS_ORD_NUM;"
                    "REM_TYP_AFF;NUM_ENQ;BEN_RNG_GEM;EXE_SOI_DTD;PRS_NAT_REF;DPN_QLF;PSE_SPE_COD;PRS_ACT_QTE")
    files["ER_PHA_F.csv"] = ["FLX_DIS_DTD;FLX_TRT_DTD;FLX_EMT_TYP;FLX_EMT_NUM;FLX_EMT_ORD;ORG_CLE_NUM;DCT_ORD_NUM;"
                             "PRS_ORD_NUM;REM_TYP_AFF;PHA_PRS_C13;PHA_ACT_QSN;PHA_ACT_PRU"]
    claim = 0
    for i in range(BREAST):
        person = _person("B", i)
        for care in breast_dispensings(i):
            claim += 1
            flux = (care.replace(day=1) + _dt.timedelta(days=32)).replace(day=1)
            keys = f"{_dmy(flux)};{_dmy(flux)};1;140000001;1;01C141001;{claim};1;1"
            files.setdefault(f"ER_PRS_F_{care.year}.csv", [claim_header]).append(
                f"{keys};{person};1;{_dmy(care)};3317;0;{6 if i % 5 == 0 else 1};1")
            files["ER_PHA_F.csv"].append(f"{keys};{TAMOXIFEN};1;15.20")
        claim += 1
        visit = _breast_diagnosis(i) + _dt.timedelta(days=10)
        flux = (visit.replace(day=1) + _dt.timedelta(days=32)).replace(day=1)
        files.setdefault(f"ER_PRS_F_{visit.year}.csv", [claim_header]).append(
            f"{_dmy(flux)};{_dmy(flux)};1;140000099;1;01C141001;{claim};1;1;{person};1;{_dmy(visit)};1111;0;1;1")
    pmsi: dict[str, list[str]] = {}

    def stay(kind: str, year: int, line: str | None = None) -> None:
        lines = pmsi.setdefault(f"T_MCO{year % 100:02d}{kind}.csv", [_PMSI_HEADERS[kind]])
        if line is not None:
            lines.append(line)

    for i in range(BREAST):
        person, diagnosis = _person("B", i), _breast_diagnosis(i)
        files["IR_BEN_R.csv"].append(f"{person};1;2;{1945 + i % 25};{1 + i % 12:02d};014;{101 + i % 5};;"
                                     f"01/01/2010;{_dmy(diagnosis)};0")
        files["registry_cases.csv"].append(f"GEN14;B{i:05d};{person};{diagnosis.isoformat()};C50.4;8500/3;C504;"
                                           f"{'I' if i % 3 else 'II'};7")
    rsa: dict[tuple[str, int], int] = {}  # each hospital numbers its stays from 1 again every PMSI year
    for i in range(LUNG):
        person, diagnosis, death = _person("L", i), _lung_diagnosis(i), lung_death(i)
        # The commune (hence the FDep quintile) by pairs of cases: independent of the delay group, set by i % 5.
        commune = 101 + (i // 2) % 5
        files["IR_BEN_R.csv"].append(f"{person};1;{1 + i % 2};{1940 + i % 30};{1 + i % 12:02d};014;{commune};"
                                     f"{_dmy(death) if death else ''};01/01/2010;{_dmy(death or diagnosis)};0")
        files["registry_cases.csv"].append(f"GEN14;L{i:05d};{person};{diagnosis.isoformat()};C34.1;8140/3;C341;IV;7")
        if death:
            files["KI_CCI_R.csv"].append(f"X{i:05d};{person};{_dmy(death)};C349;014")
        hospital = HOSPITALS[i % 2]
        entry = diagnosis + _dt.timedelta(days=3)
        delay = lung_chemo_delay(i)
        treated = [] if delay is None else [("Z511", "C341", diagnosis + _dt.timedelta(days=delay), 0)]
        for dp, dr, start, nights in [("C341", "", entry, 2), *treated]:
            end = start + _dt.timedelta(days=nights)
            number = rsa[hospital, end.year] = rsa.get((hospital, end.year), 0) + 1
            stay("B", end.year, f"{hospital};{number:010d};{dp};{dr};{'04M05T' if nights else '28Z07Z'};{nights};8;8;"
                                f"{end.year}")
            stay("C", end.year, f"{hospital};{number:010d};{person};{_pmsi(start)};{_pmsi(end)};0;"
                                f"{_pmsi(start) if i % 4 else ''};{_pmsi(end) if i % 4 else ''}")
            if dp == "C341" and i % 2:
                stay("D", end.year, f"{hospital};{number:010d};1;C780")
            if dp == "C341" and end.year == 2020:  # a chest CT scan (not a treatment), in 2020's T_MCOaaA only
                stay("A", end.year, f"{hospital};{number:010d};ZBQH001;1;1")
    years = sorted({int(name[5:7]) for name in pmsi})
    assert len(years) >= 2, years  # two PMSI years at least, as the insurer delivers them
    for year in years:  # no act after 2020: a header-only T_MCO21A.csv lands as an empty part
        for kind in _PMSI_HEADERS:
            stay(kind, year)
    files.update(pmsi)
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
