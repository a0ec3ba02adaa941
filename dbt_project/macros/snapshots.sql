{% macro latest_extraction(relation) -%}
    {#- Snapshot sources: the latest accepted extraction holds the whole table. -#}
    (select max(cast(extraction as date)) from {{ relation }})
{%- endmacro %}


{% macro incremental_extraction_filter(relation) -%}
    {#- Delta sources, incremental run: only extractions newer than the last one already loaded.
        The bound is a literal so DuckDB prunes the older extraction=... folders without reading them. -#}
    {%- if is_incremental() and execute -%}
        {%- set loaded = run_query('select max(extraction_date) from ' ~ this).columns[0][0] -%}
        {%- if loaded is not none -%}
            where cast(extraction as date) > date '{{ loaded }}'
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
