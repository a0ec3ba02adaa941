{#- The block the four PMSI MCO staging models share (dbt_project/models/staging/pmsi_mco). -#}

{% macro pmsi_stay_source(table) -%}
    {#- Configures the calling model as incremental on stay_id and selects the rows of `table` not loaded yet
        (every extraction on a full refresh). A stay re-sent in a later extraction replaces all the lines the
        model holds for it (delete+insert on stay_id), so an incremental run and a full refresh agree (on Spark, a
        table rebuilt at each run: see stay_incremental_config). -#}
    {{- config(**stay_incremental_config('stay_id')) -}}
    {{- pmsi_refuse_stays_keyed_without_year() -}}
    select * from {{ source('pmsi_mco', table) }}
    {{ incremental_extraction_filter(source('pmsi_mco', table)) }}
{%- endmacro %}


{% macro pmsi_latest_stay_version(line_key, order_by) -%}
    {#- Keeps the lines of a stay from the latest extraction that sent it, one per `line_key` (exact duplicates
        collapse; `order_by` picks the kept line). One window when the table has one line per stay. -#}
    {%- if line_key == 'stay_id' %}
    qualify row_number() over (partition by stay_id order by extraction_date desc, {{ order_by }}) = 1
    {%- else %}
    qualify extraction_date = max(extraction_date) over (partition by stay_id)
        and row_number() over (partition by {{ line_key }}, extraction_date order by {{ order_by }}) = 1
    {%- endif %}
{%- endmacro %}


{% macro pmsi_stay_id() -%}
    {#- The stay a PMSI MCO line belongs to: its PMSI year, hospital and RSA number (2023-750000001-0000000001).
        ETA_NUM + RSA_NUM identify a stay within one year's tables only (T_MCO22B and T_MCO23B may both number a
        stay 0000000001 of one hospital); the year of the table (PMSI_ANN) makes the key. A stay belongs to the
        year it ended in, so a re-sent stay comes in the same year's table and keeps its stay_id. -#}
    cast(PMSI_ANN as string) || '-' || cast(ETA_NUM as string) || '-' || cast(RSA_NUM as string)
{%- endmacro %}


{% macro pmsi_refuse_stays_keyed_without_year() -%}
    {#- An incremental run on a table whose stays were keyed before the PMSI year was part of stay_id
        (ETA_NUM-RSA_NUM) would add every re-sent stay a second time under its new key: it stops and asks for the
        one full refresh that re-keys them all. A table is keyed one way throughout (this stops the first append
        of new keys to old ones), so one line tells, not a scan of every stay at each run. -#}
    {%- if is_incremental() and execute -%}
        {%- set old = run_query('select stay_id from (select stay_id from ' ~ this ~ ' where stay_id is not null '
                                ~ "limit 1) as one where substr(stay_id, 5, 1) <> '-'") -%}
        {%- if old.rows | length > 0 -%}
            {{ exceptions.raise_compiler_error(this ~ " holds stays keyed without their PMSI year (stay_id '"
               ~ old.columns[0][0] ~ "', before PMSI_ANN-ETA_NUM-RSA_NUM): build it once with a full refresh "
               ~ "(platform_refresh with full_refresh=true, or oncopipe dbt build --full-refresh)") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
