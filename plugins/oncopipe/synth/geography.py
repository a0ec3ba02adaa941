"""Geography of the synthetic extract: departments, communes with their FDep quintile, registries.

Fixed reference data: the same for every seed, like the real referentials. Department populations are the
2021 census figures (thousands, rounded); the registry list mirrors the French network (FRANCIM): general
registries cover every site of their departments, specialised ones only some sites, together about 22 % of
the adult population.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# department code (3 chars), INSEE region code, population in thousands
DEPARTMENTS: tuple[tuple[str, str, int], ...] = (
    ("001", "84", 657), ("002", "32", 531), ("003", "84", 335), ("004", "93", 165), ("005", "93", 141),
    ("006", "93", 1094), ("007", "84", 329), ("008", "44", 270), ("009", "76", 153), ("010", "44", 310),
    ("011", "76", 374), ("012", "76", 279), ("013", "93", 2043), ("014", "28", 694), ("015", "84", 144),
    ("016", "75", 352), ("017", "75", 651), ("018", "24", 302), ("019", "75", 240), ("02A", "94", 158),
    ("02B", "94", 182), ("021", "27", 534), ("022", "53", 601), ("023", "75", 116), ("024", "75", 413),
    ("025", "27", 543), ("026", "84", 516), ("027", "28", 599), ("028", "24", 431), ("029", "53", 915),
    ("030", "76", 748), ("031", "76", 1400), ("032", "76", 191), ("033", "75", 1623), ("034", "76", 1175),
    ("035", "53", 1079), ("036", "24", 219), ("037", "24", 610), ("038", "84", 1271), ("039", "27", 259),
    ("040", "75", 413), ("041", "24", 329), ("042", "84", 765), ("043", "84", 227), ("044", "52", 1429),
    ("045", "24", 680), ("046", "76", 174), ("047", "75", 331), ("048", "76", 76), ("049", "52", 818),
    ("050", "28", 495), ("051", "44", 566), ("052", "44", 172), ("053", "52", 307), ("054", "44", 733),
    ("055", "44", 184), ("056", "53", 759), ("057", "44", 1046), ("058", "27", 204), ("059", "32", 2608),
    ("060", "32", 829), ("061", "28", 279), ("062", "32", 1462), ("063", "84", 662), ("064", "75", 687),
    ("065", "76", 229), ("066", "76", 479), ("067", "44", 1140), ("068", "44", 767), ("069", "84", 1883),
    ("070", "27", 235), ("071", "27", 551), ("072", "52", 566), ("073", "84", 436), ("074", "84", 826),
    ("075", "11", 2133), ("076", "28", 1255), ("077", "11", 1421), ("078", "11", 1448), ("079", "75", 374),
    ("080", "32", 570), ("081", "76", 389), ("082", "76", 261), ("083", "93", 1076), ("084", "93", 561),
    ("085", "52", 685), ("086", "75", 438), ("087", "75", 372), ("088", "44", 364), ("089", "27", 335),
    ("090", "27", 141), ("091", "11", 1301), ("092", "11", 1624), ("093", "11", 1655), ("094", "11", 1407),
    ("095", "11", 1249), ("971", "01", 384), ("972", "02", 361), ("973", "03", 286), ("974", "04", 868),
    ("976", "06", 256),
)
DEPARTMENT_CODES = np.array([d[0] for d in DEPARTMENTS])
REGION_CODES = np.array([d[1] for d in DEPARTMENTS])
DEPARTMENT_WEIGHTS = np.array([d[2] for d in DEPARTMENTS], dtype=float) / sum(d[2] for d in DEPARTMENTS)

ALL_SITES = ("breast", "lung", "pancreas", "liver", "oesophagus", "stomach", "cns")
DIGESTIVE = ("oesophagus", "stomach", "liver", "pancreas")


@dataclass(frozen=True)
class Registry:
    reg_id: str
    name: str
    departments: tuple[str, ...]
    sites: tuple[str, ...]   # sites of this project the registry records


REGISTRIES: tuple[Registry, ...] = (
    Registry("GEN14", "Registre général des tumeurs du Calvados", ("014",), ALL_SITES),
    Registry("GEN25", "Registre des tumeurs du Doubs", ("025",), ALL_SITES),
    Registry("GEN34", "Registre des tumeurs de l'Hérault", ("034",), ALL_SITES),
    Registry("GEN38", "Registre du cancer de l'Isère", ("038",), ALL_SITES),
    Registry("GEN44", "Registre des cancers de Loire-Atlantique et Vendée", ("044", "085"), ALL_SITES),
    Registry("GEN50", "Registre des cancers de la Manche", ("050",), ALL_SITES),
    Registry("GEN67", "Registre des cancers du Bas-Rhin", ("067",), ALL_SITES),
    Registry("GEN68", "Registre des cancers du Haut-Rhin", ("068",), ALL_SITES),
    Registry("GEN80", "Registre du cancer de la Somme", ("080",), ALL_SITES),
    Registry("GEN81", "Registre des cancers du Tarn", ("081",), ALL_SITES),
    Registry("GEN87", "Registre général des cancers de Haute-Vienne", ("087",), ALL_SITES),
    Registry("GEN33", "Registre général des cancers de la Gironde", ("033",), ALL_SITES),
    Registry("GEN74", "Registre des cancers des deux Savoie", ("073", "074"), ALL_SITES),
    Registry("GEN59", "Registre général des cancers de Lille et de sa région", ("059",), ALL_SITES),
    Registry("GEN971", "Registre général des cancers de la Guadeloupe", ("971",), ALL_SITES),
    Registry("GEN972", "Registre général des cancers de la Martinique", ("972",), ALL_SITES),
    Registry("GEN973", "Registre des cancers de la Guyane", ("973",), ALL_SITES),
    Registry("GEN974", "Registre des cancers de la Réunion", ("974",), ALL_SITES),
    Registry("DIG21", "Registre bourguignon des cancers digestifs (Côte-d'Or)", ("021",), DIGESTIVE),
    Registry("DIG71", "Registre bourguignon des cancers digestifs (Saône-et-Loire)", ("071",), DIGESTIVE),
    Registry("DIG29", "Registre finistérien des tumeurs digestives", ("029",), DIGESTIVE),
    Registry("DIG14", "Registre des tumeurs digestives du Calvados", ("014",), DIGESTIVE),
    Registry("GYN21", "Registre des cancers du sein et gynécologiques de Côte-d'Or", ("021",), ("breast",)),
    Registry("SNC33", "Registre des tumeurs primitives du système nerveux central de la Gironde", ("033",),
             ("cns",)),
    Registry("HEM21", "Registre des hémopathies malignes de Côte-d'Or", ("021",), ()),
    Registry("HEM14", "Registre régional des hémopathies malignes de Basse-Normandie", ("014", "050", "061"), ()),
    Registry("THY51", "Registre des cancers de la thyroïde Marne-Ardennes", ("051", "008"), ()),
)


@lru_cache(maxsize=1)
def registry_lookup() -> np.ndarray:
    """Registry index covering each (department, site): array [department, site] of int (-1 = none).

    A general registry wins over a specialised one (one registry record per tumour).
    """
    out = np.full((len(DEPARTMENTS), len(ALL_SITES)), -1, dtype=np.int16)
    dept_index = {d: i for i, d in enumerate(DEPARTMENT_CODES)}
    for r_index in range(len(REGISTRIES) - 1, -1, -1):  # earlier (general) registries overwrite later ones
        reg = REGISTRIES[r_index]
        for dept in reg.departments:
            for site in reg.sites:
                out[dept_index[dept], ALL_SITES.index(site)] = r_index
    return out


@dataclass(frozen=True)
class Communes:
    """Every commune: its department index, code, population weight and FDep index and quintile."""

    department: np.ndarray  # index into DEPARTMENTS
    code: np.ndarray        # 3-character commune code within the department
    weight: np.ndarray      # share of its department's population
    fdep: np.ndarray
    quintile: np.ndarray
    first: np.ndarray       # per department, index of its first commune
    count: np.ndarray       # per department, number of communes


@lru_cache(maxsize=1)
def communes() -> Communes:
    """Build the fixed commune referential (a constant random stream: identical for every seed)."""
    rng = np.random.default_rng(20_240_101)
    deps, codes, weights, fdeps = [], [], [], []
    first, count = [], []
    for i, (_code, region, pop) in enumerate(DEPARTMENTS):
        k = int(np.clip(pop // 12, 12, 150))
        first.append(len(codes))
        count.append(k)
        numbers = np.sort(rng.choice(np.arange(1, 900), size=k, replace=False))
        w = rng.lognormal(0.0, 1.2, size=k)
        # Department-level deprivation: the north, the Mediterranean rim and overseas are more deprived.
        level = {"32": 1.2, "44": 0.6, "93": 0.4, "76": 0.3, "11": -0.2, "01": 2.0, "02": 2.0, "03": 2.5,
                 "04": 2.2, "06": 3.0}.get(region, 0.0)
        deps.extend([i] * k)
        codes.extend(f"{n:03d}" for n in numbers)
        weights.extend(w / w.sum())
        fdeps.extend(np.round(level + rng.normal(0.0, 1.3, size=k), 3))
    dep_arr = np.array(deps, dtype=np.int16)
    weight = np.array(weights)
    fdep = np.array(fdeps)
    population = weight * DEPARTMENT_WEIGHTS[dep_arr]
    order = np.argsort(fdep, kind="stable")
    cum = np.cumsum(population[order]) / population.sum()
    quint = np.empty(len(fdep), dtype=np.int8)
    quint[order] = np.minimum(5, 1 + (cum * 5 - 1e-12).astype(int))
    return Communes(dep_arr, np.array(codes), weight, fdep, quint, np.array(first), np.array(count))


def draw_residence(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` residences: (department index, commune index into :func:`communes`)."""
    com = communes()
    dept = rng.choice(len(DEPARTMENTS), size=n, p=DEPARTMENT_WEIGHTS).astype(np.int16)
    # Within the department: inverse CDF over its communes' weights.
    cum = np.cumsum(com.weight)
    start = com.first[dept]
    base = np.where(start > 0, cum[start - 1], 0.0)
    u = base + rng.random(n) * (cum[start + com.count[dept] - 1] - base)
    commune = np.searchsorted(cum, u, side="right")
    commune = np.clip(commune, start, start + com.count[dept] - 1)
    return dept, commune
