-- Steps
-- 1. One row per poor-prognosis case, with its diagnosing hospital (first stay coded with the site).
-- 2. delay_days = first treatment - diagnosis (null when no treatment was observed in the window).
with

cases as (

    select * from {{ ref('poor_prognosis_cases') }}

),

final as (

    select
        cast(case_id as string) as case_id,
        cast(site as string) as site,
        cast(hospital_id as string) as hospital_id,
        cast(diagnosis_date as date) as diagnosis_date,
        cast(first_treatment_date as date) as first_treatment_date,
        cast(first_treatment_kind as string) as first_treatment_kind,
        cast({{ days_between('diagnosis_date', 'first_treatment_date') }} as integer) as delay_days,
        cast(first_treatment_date is not null as boolean) as treated,
        cast(stage as string) as stage,
        cast(sex as string) as sex,
        cast(age_at_diagnosis as integer) as age_at_diagnosis,
        cast(deprivation_quintile as integer) as deprivation_quintile
    from cases

)

select * from final
