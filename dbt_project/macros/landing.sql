{% macro landing_path() -%}
    {{- env_var('ONCOPIPE_LANDING', env_var('ONCOPIPE_HOME', '../var') ~ '/landing') -}}
{%- endmacro %}


{% macro assert_landing_present() %}
    {#- on-run-start: name what is missing instead of a "table landing.<source> does not exist" per model. -#}
    {%- if execute and flags.WHICH in ('build', 'run', 'test', 'compile') -%}
        {%- set sources = ['ir_ben_r', 'ir_pha_r', 'er_prs_f', 'er_pha_f', 't_mco_b', 't_mco_c', 't_mco_d', 't_mco_a',
                           'registry_cases', 'ki_cci_r', 'ir_geo_fdep'] -%}
        {%- set found = landing_tables() | map('lower') | list -%}
        {%- set missing = [] -%}
        {%- for name in sources -%}
            {%- if name not in found -%}{%- do missing.append(name) -%}{%- endif -%}
        {%- endfor -%}
        {%- if missing -%}
            {{ exceptions.raise_compiler_error(
                "no landing view for source(s) " ~ missing | join(', ') ~ " in the warehouse: the views over the "
                ~ "landing folder " ~ landing_path() ~ " are written by `oncopipe dbt ...` and the refresh "
                ~ "(oncopipe.warehouse.dbt_runner.prepare_landing); run dbt through them") }}
        {%- endif -%}
    {%- endif -%}
    select 1
{% endmacro %}
