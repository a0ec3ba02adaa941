-- Steps
-- 1. Keep the latest accepted extraction of the drug referential (snapshot).
-- 2. Rename, cast, flag malformed CIP13 / ATC codes.
-- 3. One line per CIP13.
with

source as (

    select * from {{ source('snds', 'ir_pha_r') }}
    where cast(extraction as date) = {{ latest_extraction(source('snds', 'ir_pha_r')) }}

),

renamed as (

    select
        cast(PHA_CIP_C13 as string) as cip13,
        cast(PHA_ATC_C07 as string) as atc_code,
        cast(PHA_ATC_L07 as string) as atc_label,
        cast(PHA_UNT_NBR_DSES as integer) as units_per_box,
        cast(PHA_NOM_PA as string) as product_name,
        cast(extraction as date) as extraction_date
    from source

),

final as (

    select
        *,
        {{ is_cip13('cip13') }} as is_valid_cip13,
        {{ is_atc7('atc_code') }} as is_valid_atc
    from renamed
    qualify row_number() over (partition by cip13 order by atc_code, units_per_box desc) = 1

)

select * from final
