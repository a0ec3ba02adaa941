-- Steps
-- 1. Incident cases of the six poor-prognosis sites (registry first, claims algorithm elsewhere).
-- 2. First treatment: the earliest surgery of the case's site, chemotherapy or radiotherapy from the diagnosis
--    to diagnosis + first_treatment_window_days (ties on the day: surgery, chemotherapy, radiotherapy).
-- 3. Survival: from the diagnosis to death (event = 1) or the end of data (event = 0, censored); a death after
--    the end of data is not observed.
with

cases as (

    select * from {{ ref('int_cancer_cases_identified') }}
    where is_poor_prognosis

),

persons as (

    select * from {{ ref('int_persons_enriched') }}

),

treatments as (

    select * from {{ ref('int_cancer_treatments_identified') }}
    where treatment_kind in ('surgery', 'chemotherapy', 'radiotherapy')

),

first_treatments as (

    select
        c.case_id,
        t.treatment_date as first_treatment_date,
        t.treatment_kind as first_treatment_kind
    from cases as c
    inner join treatments as t
        on t.person_id = c.person_id
        and (t.site = c.site or t.site = 'all')
        and t.treatment_date >= c.diagnosis_date
        and t.treatment_date <= c.diagnosis_date + {{ var('first_treatment_window_days') }}
    qualify row_number() over (
        partition by c.case_id
        order by
            t.treatment_date,
            case t.treatment_kind when 'surgery' then 0 when 'chemotherapy' then 1 else 2 end
    ) = 1

),

joined as (

    select
        c.*,
        p.sex,
        p.birth_year,
        p.birth_month,
        p.department_code,
        p.region_code,
        p.deprivation_quintile,
        case when p.death_date <= p.end_of_data_date then p.death_date end as death_date,
        p.end_of_data_date,
        f.first_treatment_date,
        f.first_treatment_kind
    from cases as c
    inner join persons as p on p.person_id = c.person_id
    left join first_treatments as f on f.case_id = c.case_id
    where c.diagnosis_date <= p.end_of_data_date

),

final as (

    select
        cast(case_id as string) as case_id,
        cast(person_id as string) as person_id,
        cast(site as string) as site,
        cast(icd10_code as string) as icd10_code,
        cast(stage as string) as stage,
        cast(sex as string) as sex,
        cast(birth_year as integer) as birth_year,
        cast(floor(((year(diagnosis_date) * 12 + month(diagnosis_date)) - (birth_year * 12 + birth_month)) / 12)
            as integer) as age_at_diagnosis,
        cast(department_code as string) as department_code,
        cast(region_code as string) as region_code,
        cast(deprivation_quintile as integer) as deprivation_quintile,
        cast(hospital_id as string) as hospital_id,
        cast(diagnosis_date as date) as diagnosis_date,
        cast(year(diagnosis_date) as integer) as diagnosis_year,
        cast(first_treatment_date as date) as first_treatment_date,
        cast(first_treatment_kind as string) as first_treatment_kind,
        cast(death_date as date) as death_date,
        cast(end_of_data_date as date) as end_of_data_date,
        cast({{ days_between('diagnosis_date', 'coalesce(death_date, end_of_data_date)') }} as integer) as follow_up_days,
        cast(case when death_date is not null then 1 else 0 end as integer) as event,
        cast(case_source as string) as case_source
    from joined

)

select * from final
