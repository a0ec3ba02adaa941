-- Steps
-- 1. Read the PMSI linkage extractions not loaded yet (all of them on a full refresh).
-- 2. Rename, cast; is_linked when the NIR linkage return code is '0' (OK). The stay's dates are the hospital's
--    ENT_DAT / SOR_DAT, or EXE_SOI_DTD / EXE_SOI_DTF where those are empty.
-- 3. One line per stay, from the latest extraction that sent it (delete+insert on stay_id).
with

source as (

    {{ pmsi_stay_source('t_mco_c') }}

),

renamed as (

    select
        {{ pmsi_stay_id() }} as stay_id,
        cast(ETA_NUM as string) as hospital_id,
        cast(NIR_ANO_17 as string) as person_id,
        coalesce(cast(ENT_DAT as date), cast(EXE_SOI_DTD as date)) as entry_date,
        coalesce(cast(SOR_DAT as date), cast(EXE_SOI_DTF as date)) as exit_date,
        cast(NIR_RET as string) as linkage_return_code,
        cast(NIR_RET as string) = '0' as is_linked,
        cast(extraction as date) as extraction_date
    from source

),

final as (

    select * from renamed
    {{ pmsi_latest_stay_version('stay_id', 'exit_date desc') }}

)

select * from final
