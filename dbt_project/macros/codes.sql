{#- Format checks of the SNDS coding systems, as boolean SQL expressions over a varchar column. -#}

{% macro is_icd10(column) -%}
    coalesce({{ regex_full_match(column, '[A-Z][0-9]{2}[0-9A-Z]{0,3}') }}, false)
{%- endmacro %}

{% macro is_icdo3_topography(column) -%}
    coalesce({{ regex_full_match(column, 'C[0-9]{2}[.][0-9]') }}, false)
{%- endmacro %}

{% macro is_atc7(column) -%}
    coalesce({{ regex_full_match(column, '[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}') }}, false)
{%- endmacro %}

{% macro is_ccam(column) -%}
    coalesce({{ regex_full_match(column, '[A-Z]{4}[0-9]{3}') }}, false)
{%- endmacro %}

{% macro is_department(column) -%}
    coalesce({{ regex_full_match(column, '0(0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5])|97[1-6]') }}, false)
{%- endmacro %}

{% macro is_cip13(column) -%}
    {#- 13 digits, starts 34009, EAN-13 check digit: weights 1,3,1,3... on the first 12 digits (an unrolled sum:
        the same SQL on both engines). -#}
    coalesce(
        {{ regex_full_match(column, '34009[0-9]{8}') }}
        and (
            10 - (
                {%- for i in range(12) %}
                try_cast(substr({{ column }}, {{ i + 1 }}, 1) as integer) * {{ 1 if i % 2 == 0 else 3 }}
                {%- if not loop.last %} +{% endif %}
                {%- endfor %}
            ) % 10
        ) % 10 = try_cast(substr({{ column }}, 13, 1) as integer),
        false
    )
{%- endmacro %}
