-- Steps
-- 1. Keep the latest accepted extraction of the causes of death (snapshot).
-- 2. Rename and cast.
-- 3. One death certificate per person (the earliest date if two were linked).
with

source as (

    select * from {{ source('cepidc', 'ki_cci_r') }}
    where cast(extraction as date) = {{ latest_extraction(source('cepidc', 'ki_cci_r')) }}

),

renamed as (

    select
        cast(BEN_NIR_ANO as string) as person_id,
        cast(BEN_DCD_DTE as date) as death_date,
        upper(trim(cast(DCD_CIM_COD as string))) as underlying_cause_code,
        cast(DCD_DPT_COD as string) as death_department_code,
        cast(extraction as date) as extraction_date
    from source

),

final as (

    select * from renamed
    where death_date is not null
    qualify row_number() over (partition by person_id order by death_date, underlying_cause_code) = 1

)

select * from final
