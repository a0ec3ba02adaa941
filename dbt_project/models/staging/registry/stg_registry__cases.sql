-- Steps
-- 1. Keep the latest accepted extraction of the registry records (snapshot).
-- 2. Rename and cast; stage outside I..IV is X (unknown); flag malformed topography / ICD-10.
-- 3. One line per registry case (registry + case number).
with

source as (

    select * from {{ source('registry', 'registry_cases') }}
    where cast(extraction as date) = {{ latest_extraction(source('registry', 'registry_cases')) }}

),

renamed as (

    select
        cast(REG_ID as string) || '-' || cast(REG_CAS_ID as string) as registry_case_id,
        cast(REG_ID as string) as registry_id,
        cast(REG_CAS_ID as string) as registry_case_number,
        cast(BEN_NIR_PSA as string) as person_id,
        cast(DAT_DIAG as date) as diagnosis_date,
        upper(trim(cast(TOP_ICDO3 as string))) as topography_code,
        cast(MOR_ICDO3 as string) as morphology_code,
        upper(trim(cast(CIM10 as string))) as icd10_code,
        case when upper(trim(cast(STADE as string))) in ('I', 'II', 'III', 'IV')
            then upper(trim(cast(STADE as string))) else 'X' end as stage,
        cast(BASE_DIAG as integer) as basis_of_diagnosis,
        cast(extraction as date) as extraction_date
    from source

),

final as (

    select
        *,
        {{ is_icdo3_topography('topography_code') }} as is_valid_topography,
        {{ is_icd10('icd10_code') }} as is_valid_icd10
    from renamed
    qualify row_number() over (partition by registry_case_id order by diagnosis_date, person_id) = 1

)

select * from final
