-- Steps
-- 1. Keep the latest accepted extraction (snapshot source: it holds the whole referential).
-- 2. Rename to readable names and cast; decode sex; flag codes outside their value set.
-- 3. One line per beneficiary (person, twin rank): exact duplicates collapse, conflicting ones keep
--    the most recently updated line.
with

source as (

    select * from {{ source('snds', 'ir_ben_r') }}
    where cast(extraction as date) = {{ latest_extraction(source('snds', 'ir_ben_r')) }}

),

renamed as (

    select
        cast(BEN_NIR_PSA as string) as person_id,
        cast(BEN_RNG_GEM as integer) as twin_rank,
        cast(BEN_SEX_COD as integer) as sex_code,
        case cast(BEN_SEX_COD as integer) when 1 then 'male' when 2 then 'female' end as sex,
        try_cast(BEN_NAI_ANN as integer) as birth_year,
        try_cast(BEN_NAI_MOI as integer) as birth_month,
        cast(BEN_RES_DPT as string) as department_code,
        cast(BEN_RES_COM as string) as commune_code,
        cast(BEN_DCD_DTE as date) as death_date,
        cast(BEN_DTE_INS as date) as registered_date,
        cast(BEN_DTE_MAJ as date) as updated_date,
        cast(extraction as date) as extraction_date
    from source

),

flagged as (

    select
        *,
        {{ is_department('department_code') }} as is_valid_department,
        coalesce(birth_year between 1890 and year(extraction_date) and birth_month between 1 and 12, false)
            as is_valid_birth
    from renamed

),

final as (

    select * from flagged
    qualify row_number() over (
        partition by person_id, twin_rank
        order by updated_date desc, death_date desc nulls last, department_code, commune_code
    ) = 1

)

select * from final
