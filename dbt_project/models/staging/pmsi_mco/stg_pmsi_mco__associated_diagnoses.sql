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
-- 2. Rename, cast, flag codes that are not ICD-10 shaped.
-- 3. A stay's diagnoses come from the latest extraction that sent the stay (a re-sent stay replaces all
--    its lines: delete+insert on stay_id); exact duplicates collapse.
with

source as (

    select * from {{ source('pmsi_mco', 't_mco_d') }}
    {{ incremental_extraction_filter(source('pmsi_mco', 't_mco_d')) }}

),

renamed as (

    select
        cast(ETA_NUM as varchar) || '-' || cast(RSA_NUM as varchar) || '-' || cast(ASS_NUM as varchar)
            as associated_diagnosis_id,
        cast(ETA_NUM as varchar) || '-' || cast(RSA_NUM as varchar) as stay_id,
        cast(ETA_NUM as varchar) as hospital_id,
        cast(ASS_NUM as integer) as diagnosis_rank,
        upper(trim(cast(ASS_DGN as varchar))) as diagnosis_code,
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
        {{ is_icd10('diagnosis_code') }} as is_valid_diagnosis,
    from latest
    qualify row_number() over (partition by associated_diagnosis_id order by diagnosis_code) = 1

)

select * from final
