-- Steps
-- 1. Read the PMSI extractions not loaded yet (all of them on a full refresh).
-- 2. Rename, cast, flag CCAM codes that are malformed. T_MCOaaA numbers no act: an act is its code, its day
--    (ENT_DAT_DEL) and its activity within the stay; its rank orders them by day, code, activity.
-- 3. A stay's acts come from the latest extraction that sent the stay (delete+insert on stay_id);
--    exact duplicates collapse.
with

source as (

    {{ pmsi_stay_source('t_mco_a') }}

),

renamed as (

    select
        {{ pmsi_stay_id() }} || '-' || upper(trim(cast(CDC_ACT as string)))
            || '-' || cast(ENT_DAT_DEL as string) || '-' || cast(ACV_ACT as string) as act_id,
        {{ pmsi_stay_id() }} as stay_id,
        cast(ETA_NUM as string) as hospital_id,
        upper(trim(cast(CDC_ACT as string))) as ccam_code,
        cast(ENT_DAT_DEL as integer) as days_after_entry,
        cast(ACV_ACT as integer) as activity_code,
        cast(extraction as date) as extraction_date
    from source

),

latest as (

    select * from renamed
    {{ pmsi_latest_stay_version('act_id', 'ccam_code') }}

),

final as (

    select
        act_id,
        stay_id,
        hospital_id,
        cast(dense_rank() over (
            partition by stay_id order by days_after_entry, ccam_code, activity_code
        ) as integer) as act_rank,
        ccam_code,
        days_after_entry,
        activity_code,
        extraction_date,
        {{ is_ccam('ccam_code') }} as is_valid_ccam
    from latest

)

select * from final
