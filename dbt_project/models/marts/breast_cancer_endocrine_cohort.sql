-- Steps
-- 1. Women with an incident breast cancer (registry first, claims algorithm elsewhere).
-- 2. Index date: their first hormone-therapy dispensing from the diagnosis to diagnosis + 12 months
--    (var endocrine_start_window_months); first molecule and class are those of that dispensing (ties on
--    the day broken by CIP13 then line, as in the carry-over order).
-- 3. Follow-up: index to min(death, end of data, index + 60 months - 1 day), inclusive; the reason names the
--    earliest (ties: death, then end_of_data, then five_years). Women who died before the index are left out.
--    End of data is the last day of the last complete pharmacy flux month (extraction month minus var
--    pharmacy_flux_lag_months): later dispensings are still arriving; an index after it does not enter.
-- 4. follow_up_months: the number of month windows [index + k months, ...] that start on/before the end.
with

cases as (

    select * from {{ ref('int_cancer_cases_identified') }}
    where site = 'breast'

),

persons as (

    select * from {{ ref('int_persons_enriched') }}

),

dispensings as (

    select * from {{ ref('int_hormone_therapy_dispensings_netted') }}

),

index_dispensings as (

    select
        c.person_id,
        d.dispensing_date as index_date,
        d.molecule as first_molecule,
        d.therapy_class as first_class
    from cases as c
    inner join dispensings as d
        on d.person_id = c.person_id
        and d.dispensing_date >= c.diagnosis_date
        and d.dispensing_date <= {{ add_months('c.diagnosis_date', var('endocrine_start_window_months')) }}
    qualify row_number() over (partition by c.person_id order by d.dispensing_date, d.cip13, d.dispensing_id) = 1

),

followed as (

    select
        c.person_id,
        c.diagnosis_date,
        c.case_source,
        c.stage,
        i.index_date,
        i.first_molecule,
        i.first_class,
        p.birth_year,
        p.birth_month,
        p.department_code,
        p.region_code,
        p.deprivation_quintile,
        p.death_date,
        {{ end_of_complete_flux('p.end_of_data_date') }} as end_of_data_date,
        {{ add_months('i.index_date', var('endocrine_follow_up_months')) }} - 1 as horizon_date
    from cases as c
    inner join index_dispensings as i on i.person_id = c.person_id
    inner join persons as p on p.person_id = c.person_id
    where p.sex = 'female'
      and (p.death_date is null or p.death_date >= i.index_date)
      and i.index_date <= {{ end_of_complete_flux('p.end_of_data_date') }}

),

ended as (

    select
        *,
        least(coalesce(death_date, horizon_date), end_of_data_date, horizon_date) as follow_up_end_date
    from followed

),

final as (

    select
        cast(person_id as string) as person_id,
        cast(diagnosis_date as date) as diagnosis_date,
        cast(case_source as string) as case_source,
        cast(stage as string) as stage,
        cast(index_date as date) as index_date,
        cast(first_molecule as string) as first_molecule,
        cast(first_class as string) as first_class,
        cast(floor(((year(index_date) * 12 + month(index_date)) - (birth_year * 12 + birth_month)) / 12) as integer)
            as age_at_index,
        cast(birth_year as integer) as birth_year,
        cast(department_code as string) as department_code,
        cast(region_code as string) as region_code,
        cast(deprivation_quintile as integer) as deprivation_quintile,
        cast(death_date as date) as death_date,
        cast(end_of_data_date as date) as end_of_data_date,
        cast(follow_up_end_date as date) as follow_up_end_date,
        cast(case
            when follow_up_end_date = death_date then 'death'
            when follow_up_end_date = end_of_data_date then 'end_of_data'
            else 'five_years'
        end as string) as follow_up_end_reason,
        cast({{ days_between('index_date', 'follow_up_end_date') }} + 1 as integer) as follow_up_days,
        cast(least(
            {{ month_boundaries('index_date', 'follow_up_end_date') }}
            - case when {{ add_months('index_date', month_boundaries('index_date', 'follow_up_end_date')) }}
                        > follow_up_end_date then 1 else 0 end
            + 1,
            {{ var('endocrine_follow_up_months') }}
        ) as integer) as follow_up_months
    from ended

)

select * from final
