{% macro landing_path() -%}
    {{- env_var('ONCOPIPE_LANDING', env_var('ONCOPIPE_HOME', '../var') ~ '/landing') -}}
{%- endmacro %}


{% macro assert_landing_present() %}
    {#- on-run-start: name the landing folder and the missing sources instead of DuckDB's "No files found". -#}
    {%- if execute and flags.WHICH in ('build', 'run', 'test', 'compile') -%}
        {%- set fmt = var('landing_format') -%}
        {%- if fmt not in ('parquet', 'csv') -%}
            {{ exceptions.raise_compiler_error("var landing_format must be 'parquet' or 'csv', got '" ~ fmt ~ "'") }}
        {%- endif -%}
        {%- set sources = ['ir_ben_r', 'ir_pha_r', 'er_pha_f', 't_mco_b', 't_mco_c', 't_mco_d', 't_mco_a',
                           'registry_cases', 'ki_cci_r', 'ir_geo_fdep'] -%}
        {%- set missing = [] -%}
        {%- for name in sources -%}
            {%- set pattern = landing_path() ~ '/' ~ name ~ '/extraction=*/*.' ~ fmt -%}
            {%- set found = run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0][0] -%}
            {%- if found == 0 -%}{%- do missing.append(name) -%}{%- endif -%}
        {%- endfor -%}
        {%- if missing -%}
            {{ exceptions.raise_compiler_error(
                "no accepted " ~ fmt ~ " extraction in landing folder " ~ landing_path() ~ " for source(s): "
                ~ missing | join(', ') ~ " (expected <landing>/<source>/extraction=YYYY-MM-DD/part-NNNNN." ~ fmt
                ~ "; generate one with `oncopipe generate`)") }}
        {%- endif -%}
    {%- endif -%}
    select 1
{% endmacro %}
