{#- The DCIR nine-key join (issue #16): ER_PRS_F claim lines and ER_PHA_F drug lines land apart, each with the nine
    keys (oncopipe.contracts.sources.DCIR_KEY), and staging joins them. Engine-neutral: the one engine-specific
    piece, the 64-bit hash, is hash64 (engine.sql). -#}

{% macro dcir_key() -%}
    {#- The nine keys as staged: a drug line belongs to the claim line with the same nine values (one flux). -#}
    {{- return(['flux_date', 'flux_processed_date', 'emitter_type', 'emitter_number', 'emitter_sequence',
                'fund_key', 'claim_number', 'claim_line_number', 'reimbursement_type']) -}}
{%- endmacro %}


{% macro dcir_line() -%}
    {#- A line across fluxes: the nine keys but the two flux dates (a re-sent version carries later ones). Lines
        that differ only in their emitter or reimbursement type are other lines. -#}
    {{- return(dcir_key()[2:]) -}}
{%- endmacro %}


{% macro dcir_key_columns() -%}
    {#- The nine landed keys, renamed and cast (a select list). -#}
    cast(FLX_DIS_DTD as date) as flux_date,
        cast(FLX_TRT_DTD as date) as flux_processed_date,
        cast(FLX_EMT_TYP as integer) as emitter_type,
        cast(FLX_EMT_NUM as bigint) as emitter_number,
        cast(FLX_EMT_ORD as integer) as emitter_sequence,
        cast(ORG_CLE_NUM as string) as fund_key,
        cast(DCT_ORD_NUM as bigint) as claim_number,
        cast(PRS_ORD_NUM as bigint) as claim_line_number,
        cast(REM_TYP_AFF as integer) as reimbursement_type
{%- endmacro %}


{% macro one_version_per_key(name, relation, key, order_by) -%}
    {#- CTEs `<name>_repeated`, `<name>_once`, `<name>_latest` and `<name>` (their union): one line of `relation`
        per `key` (a list of columns), the first in `order_by` (a list of SQL order items). Only the keys seen more
        than once, found by a 64-bit hash of the key, go through the window: ranking every line, or grouping ~100M
        multi-column keys, spilled gigabytes at 1,000,000 patients. A hash collision only sends a line seen once
        through the window too, which keeps it: the result is exact. Each table is de-duplicated on its own
        before the one join (joining first and de-duplicating the join computed it three times: 13.3 s -> 36.7 s
        and 1.6 -> 8.4 GB at 200,000 people). -#}
    {%- set hashed = hash64(key | join(', ')) -%}
{{ name }}_repeated as (

    select {{ hashed }} as key_hash
    from {{ relation }}
    group by key_hash
    having count(*) > 1

),

{{ name }}_once as (

    select * from {{ relation }}
    where {{ hashed }} not in (select key_hash from {{ name }}_repeated)

),

{{ name }}_latest as (

    select * from {{ relation }}
    where {{ hashed }} in (select key_hash from {{ name }}_repeated)
    qualify row_number() over (partition by {{ key | join(', ') }} order by {{ order_by | join(', ') }}) = 1

),

{{ name }} as (

    select * from {{ name }}_once
    union all
    select * from {{ name }}_latest

)
{%- endmacro %}


{% macro dcir_join_condition(drug, claim) -%}
    {#- The nine-key equality of a drug line and its claim line. -#}
    {%- for column in dcir_key() %}{{ drug }}.{{ column }} = {{ claim }}.{{ column }}{% if not loop.last %}
        and {% endif %}{% endfor -%}
{%- endmacro %}
