-- Steps
-- 1. Read the PMSI extractions not loaded yet (all of them on a full refresh).
-- 2. Rename, cast, flag CCAM codes that are malformed.
-- 3. A stay's acts come from the latest extraction that sent the stay (delete+insert on stay_id);
--    exact duplicates collapse.
with

source as (

    {{ pmsi_stay_source('t_mco_a') }}

),

renamed as (

    select
        cast(ETA_NUM as string) || '-' || cast(RSA_NUM as string) || '-' || cast(ACT_NUM as string) as act_id,
        cast(ETA_NUM as string) || '-' || cast(RSA_NUM as string) as stay_id,
        cast(ETA_NUM as string) as hospital_id,
        cast(ACT_NUM as integer) as act_rank,
        upper(trim(cast(CDC_ACT as string))) as ccam_code,
        cast(ENT_DAT_DEL as integer) as days_after_entry,
        cast(ACV_ACT as integer) as activity_code,
        cast(extraction as date) as extraction_date
    from source

),

final as (

    select
        *,
        {{ is_ccam('ccam_code') }} as is_valid_ccam
    from renamed
    {{ pmsi_latest_stay_version('act_id', 'ccam_code') }}

)

select * from final
