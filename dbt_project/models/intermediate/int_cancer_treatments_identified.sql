-- Steps
-- 1. Acts: CCAM acts of linked stays that are in the cancer-treatment list, dated entry + days after entry
--    (surgery is specific to a site; radiotherapy and the chemotherapy port act are not: site 'all').
-- 2. Sessions: stays whose principal diagnosis is a chemotherapy (Z511) or radiotherapy (Z510) session,
--    dated at entry.
-- 3. Hormone therapy: every cleaned hormone-therapy dispensing (site 'breast').
-- One row per treatment event; a person's first treatment of a case is chosen in the marts.
with

stays as (

    select * from {{ ref('int_stays_linked') }}

),

acts as (

    select * from {{ ref('stg_pmsi_mco__acts') }}

),

treatment_acts as (

    select * from {{ ref('ccam_cancer_treatments') }}

),

sessions as (

    select * from {{ ref('icd10_treatment_sessions') }}

),

hormone_dispensings as (

    select * from {{ ref('int_hormone_therapy_dispensings_netted') }}

),

from_acts as (

    select
        s.person_id,
        s.entry_date + coalesce(greatest(a.days_after_entry, 0), 0) as treatment_date,
        t.treatment_kind,
        t.site,
        s.stay_id,
        s.hospital_id,
        a.ccam_code as code,
        'ccam' as code_system
    from acts as a
    inner join treatment_acts as t on t.ccam_code = a.ccam_code
    inner join stays as s on s.stay_id = a.stay_id

),

from_sessions as (

    select
        s.person_id,
        s.entry_date as treatment_date,
        t.treatment_kind,
        'all' as site,
        s.stay_id,
        s.hospital_id,
        s.principal_diagnosis_code as code,
        'icd10' as code_system
    from stays as s
    inner join sessions as t on t.icd10_code = s.principal_diagnosis_code

),

from_dispensings as (

    select
        person_id,
        dispensing_date as treatment_date,
        'hormone_therapy' as treatment_kind,
        'breast' as site,
        null as stay_id,
        null as hospital_id,
        atc_code as code,
        'atc' as code_system
    from hormone_dispensings

),

final as (

    select * from from_acts
    union all
    select * from from_sessions
    union all
    select * from from_dispensings

)

select * from final
