-- Steps
-- 1. One beneficiary line per person (the lowest twin rank carries the pseudonym used by PMSI and registries).
-- 2. Death: the referential's date (IR_BEN_R, latest extraction), else the CepiDc certificate.
-- 3. Residence: department (null when outside the value set), its region, the commune's FDep quintile.
-- 4. End of data: the date of the latest accepted extraction of the pharmacy flux (DCIR), the cut-off of the
--    data (the PMSI of an extraction may hold no stay at all, so it does not date the extraction).
with

beneficiaries as (

    select * from {{ ref('stg_snds__beneficiaries') }}

),

deaths as (

    select * from {{ ref('stg_cepidc__deaths') }}

),

communes as (

    select * from {{ ref('stg_fdep__communes') }}

),

regions as (

    select * from {{ ref('department_regions') }}

),

dispensings as (

    select * from {{ ref('stg_snds__pharmacy_dispensings') }}

),

cutoff as (

    select max(extraction_date) as end_of_data_date from dispensings

),

one_per_person as (

    select * from beneficiaries
    qualify row_number() over (partition by person_id order by twin_rank) = 1

),

final as (

    select
        b.person_id,
        b.sex,
        case when b.is_valid_birth then b.birth_year end as birth_year,
        case when b.is_valid_birth then b.birth_month end as birth_month,
        case when b.is_valid_birth then make_date(b.birth_year, b.birth_month, 1) end as birth_month_start,
        coalesce(b.death_date, d.death_date) as death_date,
        case
            when b.death_date is not null then 'ir_ben_r'
            when d.death_date is not null then 'cepidc'
        end as death_source,
        d.underlying_cause_code as underlying_cause_of_death_code,
        case when b.is_valid_department then b.department_code end as department_code,
        case when b.is_valid_department then b.commune_code end as commune_code,
        r.region_code,
        c.deprivation_quintile,
        cutoff.end_of_data_date
    from one_per_person as b
    cross join cutoff
    left join deaths as d on d.person_id = b.person_id
    left join regions as r on r.department_code = b.department_code and b.is_valid_department
    left join communes as c on c.department_code = b.department_code and c.commune_code = b.commune_code

)

select * from final
