{{ config(**stay_incremental_config(dcir_line())) }}
-- Steps
-- 1. Read the flux extractions not loaded yet (all of them on a full refresh) of the two DCIR tables: ER_PRS_F
--    claim lines and ER_PHA_F drug lines. The CTEs over the sources are `not materialized`: each use re-reads
--    the Parquet files (cheap) instead of holding ~100M lines in memory.
-- 2. Leave out the implausible lines of each table (the exclusion rules of var line_exclusions: a care date
--    after the extraction date on a claim line, more boxes than a dispensing can hold on a drug line); the raw
--    gate counted them in its ledger and quarantined the extraction had there been more than the rule's ceiling.
-- 3. Rename and cast. Drop information-only claim lines (DPN_QLF = 71): their drug lines find no claim below.
-- 4. De-duplicate each table on its own: one claim line per nine keys (an exact duplicate in one flux), one
--    version of each drug line across fluxes (the nine keys but the flux dates): the one of the latest
--    extraction, then latest flux. A line re-sent in a later flux (late reimbursement) replaces the loaded one:
--    delete+insert on the line key, so an incremental run and a full refresh give the same table.
-- 5. Join the drug lines to their claim lines once, on the nine keys: the person (BEN_NIR_PSA and the twin rank
--    BEN_RNG_GEM), the dispensing date and the qualifier come from the claim line. A drug line without a claim
--    line (excluded, information only, or an orphan the raw gate stops above its tolerance) is not a dispensing.
--    No concatenated string key is stored: building ~100M unique strings cost a quarter of this model; the
--    models that need a text identifier build it on the lines they keep.
-- Regularisation lines (negative PHA_ACT_QSN) are other lines of the claim and are kept with their sign: they
-- are netted in int_hormone_therapy_dispensings_netted.
with

claim_source as {{ cte_not_materialized() }} (

    select * from {{ source('snds', 'er_prs_f') }}
    {{ incremental_extraction_filter(source('snds', 'er_prs_f')) }}

),

drug_source as {{ cte_not_materialized() }} (

    select * from {{ source('snds', 'er_pha_f') }}
    {{ incremental_extraction_filter(source('snds', 'er_pha_f')) }}

),

claim_lines as {{ cte_not_materialized() }} (

    select
        cast(BEN_NIR_PSA as string) as person_id,
        cast(BEN_RNG_GEM as integer) as twin_rank,
        {{ dcir_key_columns() }},
        cast(EXE_SOI_DTD as date) as dispensing_date,
        cast(PRS_NAT_REF as integer) as service_nature_code,
        cast(DPN_QLF as integer) as line_qualifier,
        cast(PSE_SPE_COD as integer) as prescriber_specialty_code,
        cast(extraction as date) as extraction_date
    from claim_source
    where {{ exclude_implausible_lines('er_prs_f') }}
        and cast(DPN_QLF as integer) is distinct from 71

),

drug_lines as {{ cte_not_materialized() }} (

    select
        {{ dcir_key_columns() }},
        cast(PHA_PRS_C13 as string) as cip13,
        cast(PHA_ACT_QSN as integer) as boxes,
        cast(PHA_ACT_PRU as double) as box_unit_price,
        cast(extraction as date) as extraction_date
    from drug_source
    where {{ exclude_implausible_lines('er_pha_f') }}

),

{{ one_version_per_key('claims', 'claim_lines', dcir_key(), ['extraction_date desc']) }},

{{ one_version_per_key('drugs', 'drug_lines', dcir_line(),
                       ['extraction_date desc', 'flux_date desc', 'flux_processed_date desc nulls last',
                        'boxes desc']) }},

final as (

    -- No CIP13 check digit here (a per-line list computation costs ~20 % of this model at 100M lines): a line
    -- whose CIP13 is not in the drug referential (stg_snds__drugs flags malformed codes) never becomes a supply.
    select
        claims.person_id,
        claims.twin_rank,
        {%- for column in dcir_key() %}
        drugs.{{ column }},
        {%- endfor %}
        claims.dispensing_date,
        claims.service_nature_code,
        drugs.cip13,
        drugs.boxes,
        drugs.box_unit_price,
        claims.line_qualifier,
        claims.prescriber_specialty_code,
        drugs.extraction_date
    from drugs
    inner join claims
        on {{ dcir_join_condition('drugs', 'claims') }}

)

select * from final
