{{
    config(
        materialized='incremental',
        unique_key='stay_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
-- Steps
-- 1. Read the PMSI extractions not loaded yet (all of them on a full refresh).
-- 2. Rename, cast, flag CCAM codes that are malformed.
-- 3. A stay's acts come from the latest extraction that sent the stay (delete+insert on stay_id);
--    exact duplicates collapse.
with

source as (

    select * from {{ source('pmsi_mco', 't_mco_a') }}
    {{ incremental_extraction_filter(source('pmsi_mco', 't_mco_a')) }}

),

renamed as (

    select
        cast(ETA_NUM as varchar) || '-' || cast(RSA_NUM as varchar) || '-' || cast(ACT_NUM as varchar) as act_id,
        cast(ETA_NUM as varchar) || '-' || cast(RSA_NUM as varchar) as stay_id,
        cast(ETA_NUM as varchar) as hospital_id,
        cast(ACT_NUM as integer) as act_rank,
        upper(trim(cast(CDC_ACT as varchar))) as ccam_code,
        cast(ENT_DAT_DEL as integer) as days_after_entry,
        cast(ACV_ACT as integer) as activity_code,
        cast(extraction as date) as extraction_date,
    from source

),

latest as (

    select * from renamed
    qualify extraction_date = max(extraction_date) over (partition by stay_id)

),

final as (

    select
        *,
        {{ is_ccam('ccam_code') }} as is_valid_ccam,
    from latest
    qualify row_number() over (partition by act_id order by ccam_code) = 1

)

select * from final
