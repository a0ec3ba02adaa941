{#- Format checks of the SNDS coding systems, as boolean SQL expressions over a varchar column. -#}

{% macro is_icd10(column) -%}
    coalesce(regexp_full_match({{ column }}, '[A-Z][0-9]{2}[0-9A-Z]{0,3}'), false)
{%- endmacro %}

{% macro is_icdo3_topography(column) -%}
    coalesce(regexp_full_match({{ column }}, 'C[0-9]{2}\.[0-9]'), false)
{%- endmacro %}

{% macro is_atc7(column) -%}
    coalesce(regexp_full_match({{ column }}, '[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}'), false)
{%- endmacro %}

{% macro is_ccam(column) -%}
    coalesce(regexp_full_match({{ column }}, '[A-Z]{4}[0-9]{3}'), false)
{%- endmacro %}

{% macro is_department(column) -%}
    coalesce(regexp_full_match({{ column }}, '0(0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5])|97[1-6]'), false)
{%- endmacro %}

{% macro is_cip13(column) -%}
    {#- 13 digits, starts 34009, EAN-13 check digit: weights 1,3,1,3... on the first 12 digits. -#}
    coalesce(
        regexp_full_match({{ column }}, '34009[0-9]{8}')
        and (
            10 - list_sum(list_transform(range(12),
                lambda i: cast(substr({{ column }}, i + 1, 1) as integer) * (case when i % 2 = 0 then 1 else 3 end)
            )) % 10
        ) % 10 = cast(substr({{ column }}, 13, 1) as integer),
        false
    )
{%- endmacro %}
