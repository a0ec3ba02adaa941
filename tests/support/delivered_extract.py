"""A small extract written by hand in the delivered shape (not by the generator), for ``oncopipe import`` tests.

The files are named as the insurer names them (IR_BEN_R.csv, ER_PRS_F_2023.csv, ER_PHA_F.csv, T_MCO22B.csv,
T_MCO23B.csv, ki_cci_r_2023.csv), ``;``
separated, DD/MM/YYYY dates (DDMMYYYY in the PMSI), empty fields for null, NUM_ENQ as the pseudonym, extra columns
the platform does not read, two PMSI years, and a text file that is not data.
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
