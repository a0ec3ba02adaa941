-- Steps
-- 1. Registry cases: each registry record gets its site from its ICD-O-3 topography (else its ICD-10 code);
--    a person's first record of a site is the incident case (case_source = 'registry').
-- 2. Registry coverage: a person is covered for a site when a registry records that site in the department
--    of residence (seed registry_coverage). Where a registry covers the person, the registry is exhaustive:
--    claims never add a case there.
-- 3. Claims algorithm, for the (person, site) pairs with no registry record and no covering registry:
--    the first linked stay whose principal or related diagnosis (DP/DR) is in the site's ICD-10 categories
--    gives the diagnosis date (its entry date), the code and the hospital (case_source = 'claims').
--    Associated diagnoses (DA) alone do not make a case (they also code a history of cancer). A case whose
--    first coded stay falls within claims_washout_days of the start of the PMSI data is left out: it may be
--    prevalent (diagnosed before the data starts).
-- 4. Cases with a death recorded before the diagnosis are left out (contradictory records).
-- 5. The diagnosing hospital: the first linked stay coded with the site (DP, DR or DA) from 30 days before
--    the diagnosis on (registry cases may be dated at the biopsy, a few days before the first stay).
with

registry_cases as (

    select * from {{ ref('stg_registry__cases') }}

),

topographies as (

    select * from {{ ref('icdo3_topographies') }}

),

sites as (

    select * from {{ ref('icd10_cancer_sites') }}

),

coverage as (

    select * from {{ ref('registry_coverage') }}

),

persons as (

    select * from {{ ref('int_persons_enriched') }}

),

diagnoses as (

    select * from {{ ref('int_stay_diagnoses_unioned') }}

),

registry_sited as (

    select
        r.person_id,
        coalesce(t.site, s.site) as site,
        r.diagnosis_date,
        coalesce(t.icd10_code, r.icd10_code) as icd10_code,
        r.stage,
        r.registry_id,
        r.registry_case_id
    from registry_cases as r
    left join topographies as t on t.topography_code = r.topography_code
    left join sites as s on s.icd10_category = left(r.icd10_code, 3)
    where r.person_id is not null and r.diagnosis_date is not null

),

registry_first as (

    select * from registry_sited
    where site is not null
    qualify row_number() over (partition by person_id, site order by diagnosis_date, registry_case_id) = 1

),

coded_stays as (

    select
        d.*,
        s.site
    from diagnoses as d
    inner join sites as s on s.icd10_category = left(d.diagnosis_code, 3)

),

pmsi_start as (

    select min(entry_date) as first_entry_date from diagnoses

),

claims_first as (

    select
        c.person_id,
        c.site,
        c.entry_date as diagnosis_date,
        c.diagnosis_code as icd10_code,
        c.hospital_id
    from coded_stays as c
    where c.diagnosis_role in ('principal', 'related')
    qualify row_number() over (
        partition by c.person_id, c.site
        order by c.entry_date, case c.diagnosis_role when 'principal' then 0 else 1 end, c.stay_id
    ) = 1

),

claims_cases as (

    select c.*
    from claims_first as c
    cross join pmsi_start
    inner join persons as p on p.person_id = c.person_id
    left join registry_first as r on r.person_id = c.person_id and r.site = c.site
    left join coverage as cov on cov.department_code = p.department_code and cov.site = c.site
    where r.person_id is null
      and cov.site is null
      and c.diagnosis_date >= pmsi_start.first_entry_date + {{ var('claims_washout_days') }}

),

unioned as (

    select person_id, site, diagnosis_date, icd10_code, stage, registry_id, 'registry' as case_source
    from registry_first

    union all

    select person_id, site, diagnosis_date, icd10_code, 'X' as stage, null as registry_id, 'claims'
    from claims_cases

),

diagnosing_stays as (

    select
        u.person_id,
        u.site,
        c.hospital_id,
        c.stay_id,
        c.entry_date
    from unioned as u
    inner join coded_stays as c
        on c.person_id = u.person_id
        and c.site = u.site
        and c.entry_date >= u.diagnosis_date - 30
    qualify row_number() over (partition by u.person_id, u.site order by c.entry_date, c.stay_id) = 1

),

final as (

    select
        md5(u.person_id || '|' || u.site) as case_id,
        u.person_id,
        u.site,
        s.is_poor_prognosis,
        u.icd10_code,
        u.stage,
        u.diagnosis_date,
        u.case_source,
        u.registry_id,
        h.hospital_id,
        h.stay_id as diagnosing_stay_id
    from unioned as u
    inner join persons as p on p.person_id = u.person_id
    inner join (select distinct site, is_poor_prognosis from sites) as s on s.site = u.site
    left join diagnosing_stays as h on h.person_id = u.person_id and h.site = u.site
    where p.death_date is null or p.death_date >= u.diagnosis_date

)

select * from final
