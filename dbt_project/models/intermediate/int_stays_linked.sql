-- Steps
-- 1. Attach each stay summary to its patient and dates (PMSI linkage table); stays without a linkage line
--    (orphans) or with a failed NIR linkage are left out: they belong to nobody.
-- 2. Keep stays whose dates are in order (exit on or after entry).
with

stays as (

    select * from {{ ref('stg_pmsi_mco__stays') }}

),

stay_patients as (

    select * from {{ ref('stg_pmsi_mco__stay_patients') }}

),

final as (

    select
        s.stay_id,
        p.person_id,
        s.hospital_id,
        p.entry_date,
        p.exit_date,
        s.principal_diagnosis_code,
        s.related_diagnosis_code,
        s.ghm_code,
        s.length_of_stay_days,
        s.exit_mode
    from stays as s
    inner join stay_patients as p on p.stay_id = s.stay_id
    where p.is_linked
      and p.person_id is not null
      and p.entry_date is not null
      and p.exit_date >= p.entry_date

)

select * from final
