{#- Helpers of the PDC rule (see the description of endocrine_adherence_monthly). -#}

{% macro hospital_days_paused() -%}
    {#- True for hospital_days = covered_paused, false for ignore; any other value is an error. -#}
    {%- set option = var('hospital_days') -%}
    {%- if option not in ('covered_paused', 'ignore') -%}
        {{ exceptions.raise_compiler_error(
            "var hospital_days must be 'covered_paused' or 'ignore', got '" ~ option ~ "'") }}
    {%- endif -%}
    {{- return(option == 'covered_paused') -}}
{%- endmacro %}


{% macro day_number(date_expr) -%}
    cast({{ days_between("date '1970-01-01'", date_expr) }} as integer)
{%- endmacro %}


{% macro hospital_days_before(run, date_expr) -%}
    {#- Hospital days strictly before date_expr, given `run` = the person's last merged hospital run that
        starts before date_expr (an ASOF join on start_date < date_expr), or null when there is none. -#}
    coalesce({{ run }}.days_before + ({{ days_between(run ~ '.start_date', 'least(' ~ run ~ '.end_date, (' ~ date_expr ~ ') - 1)') }} + 1), 0)
{%- endmacro %}


{% macro add_months(date_expr, months_expr) -%}
    {#- Calendar months, clamped to the month end (Jan 31 + 1 month = Feb 28/29). -#}
    {{- add_months_clamped(date_expr, months_expr) -}}
{%- endmacro %}


{% macro end_of_complete_flux(extraction_date_expr) -%}
    {#- The last day of the last pharmacy flux month complete in an extraction: the extraction's month minus
        var('pharmacy_flux_lag_months') (see dbt_project.yml). 2024-12-31 -> 2024-10-31 with a lag of 2. -#}
    {%- set lag = var('pharmacy_flux_lag_months') | int -%}
    {%- if lag < 1 -%}
        {{ exceptions.raise_compiler_error("var pharmacy_flux_lag_months must be >= 1, got " ~ lag) }}
    {%- endif -%}
    {{- month_start_minus(extraction_date_expr, lag - 1, 1) -}}
{%- endmacro %}
