-- Steps
-- 1. Every diagnosis of a linked stay, one row each: the principal (DP), the related (DR) and the
--    associated ones (DA), with the role it plays.
-- 2. Only ICD-10 shaped codes are kept.
with

stays as (

    select * from {{ ref('int_stays_linked') }}

),

associated as (

    select * from {{ ref('stg_pmsi_mco__associated_diagnoses') }}

),

unioned as (

    select stay_id, person_id, hospital_id, entry_date, principal_diagnosis_code as diagnosis_code,
        'principal' as diagnosis_role
    from stays

    union all

    select stay_id, person_id, hospital_id, entry_date, related_diagnosis_code, 'related'
    from stays
    where related_diagnosis_code is not null

    union all

    select s.stay_id, s.person_id, s.hospital_id, s.entry_date, a.diagnosis_code, 'associated'
    from associated as a
    inner join stays as s on s.stay_id = a.stay_id

),

final as (

    select * from unioned
    where {{ is_icd10('diagnosis_code') }}

)

select * from final
