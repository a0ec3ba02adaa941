-- Steps
-- 1. Read the PMSI extractions not loaded yet (all of them on a full refresh).
-- 2. Rename, cast, flag codes that are not ICD-10 shaped.
-- 3. A stay's diagnoses come from the latest extraction that sent the stay (a re-sent stay replaces all
--    its lines: delete+insert on stay_id); exact duplicates collapse.
with

source as (

    {{ pmsi_stay_source('t_mco_d') }}

),

renamed as (

    select
        {{ pmsi_stay_id() }} || '-' || cast(DGN_ASS_NUM as string)
            as associated_diagnosis_id,
        {{ pmsi_stay_id() }} as stay_id,
        cast(ETA_NUM as string) as hospital_id,
        cast(DGN_ASS_NUM as integer) as diagnosis_rank,
        upper(trim(cast(ASS_DGN as string))) as diagnosis_code,
        cast(extraction as date) as extraction_date
    from source

),

final as (

    select
        *,
        {{ is_icd10('diagnosis_code') }} as is_valid_diagnosis
    from renamed
    {{ pmsi_latest_stay_version('associated_diagnosis_id', 'diagnosis_code') }}

)

select * from final
