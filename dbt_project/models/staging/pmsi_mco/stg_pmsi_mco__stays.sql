-- Steps
-- 1. Read the PMSI extractions not loaded yet (all of them on a full refresh).
-- 2. Rename, cast, flag diagnoses that are not ICD-10 shaped.
-- 3. One line per stay (PMSI year + hospital FINESS + RSA number = stay_id), from the latest extraction that
--    sent it:
--    a re-sent stay replaces the loaded one (delete+insert on stay_id).
with

source as (

    {{ pmsi_stay_source('t_mco_b') }}

),

renamed as (

    select
        {{ pmsi_stay_id() }} as stay_id,
        cast(ETA_NUM as string) as hospital_id,
        cast(RSA_NUM as string) as rsa_number,
        upper(trim(cast(DGN_PAL as string))) as principal_diagnosis_code,
        nullif(upper(trim(cast(DGN_REL as string))), '') as related_diagnosis_code,
        cast(GRG_GHM as string) as ghm_code,
        cast(SEJ_NBJ as integer) as length_of_stay_days,
        cast(ENT_MOD as string) as entry_mode,
        cast(SOR_MOD as string) as exit_mode,
        try_cast(SOR_ANN as integer) as exit_year,
        cast(PMSI_ANN as integer) as pmsi_year,
        cast(extraction as date) as extraction_date
    from source

),

final as (

    select
        *,
        {{ is_icd10('principal_diagnosis_code') }} as is_valid_principal_diagnosis
    from renamed
    {{ pmsi_latest_stay_version('stay_id', 'ghm_code') }}

)

select * from final
