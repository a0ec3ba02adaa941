-- Steps
-- 1. Keep the latest accepted extraction of the deprivation index (snapshot).
-- 2. Rename and cast; a quintile outside 1..5 becomes null (unknown).
-- 3. One line per commune (department + commune).
with

source as (

    select * from {{ source('fdep', 'ir_geo_fdep') }}
    where cast(extraction as date) = {{ latest_extraction(source('fdep', 'ir_geo_fdep')) }}

),

renamed as (

    select
        cast(DPT_COD as string) as department_code,
        cast(COM_COD as string) as commune_code,
        cast(FDEP_IDX as double) as fdep_index,
        case when cast(FDEP_QUINT as integer) between 1 and 5 then cast(FDEP_QUINT as integer) end
            as deprivation_quintile,
        cast(extraction as date) as extraction_date
    from source

),

final as (

    select * from renamed
    qualify row_number() over (partition by department_code, commune_code order by fdep_index) = 1

)

select * from final
