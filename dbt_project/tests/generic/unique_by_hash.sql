{% test unique_by_hash(model, column_name=none, combination_of_columns=none) %}
{#- The same guarantee as dbt's `unique`, for ~100M distinct values: group by a 64-bit hash of the value first
    (far less memory than the values), then compare the values themselves only where a hash is shared. Equal
    values have equal hashes, so no duplicate escapes the first step.
    Either one column (`column_name`, as a column test) or a key of several columns (`combination_of_columns`,
    as a model test; a row with any of them null is skipped, as `unique` skips a null value). -#}
{%- set columns = combination_of_columns if combination_of_columns else [column_name] -%}
{%- if not columns or columns[0] is none -%}
    {{ exceptions.raise_compiler_error("unique_by_hash on " ~ model ~ ": give column_name or combination_of_columns") }}
{%- endif -%}
{%- set key = columns | join(', ') -%}
with shared_hashes as (

    select {{ hash64(key) }} as value_hash
    from {{ model }}
    where {% for c in columns %}{{ c }} is not null{% if not loop.last %} and {% endif %}{% endfor %}
    group by value_hash
    having count(*) > 1

)

select {{ key }}, count(*) as n_records
from {{ model }}
where {{ hash64(key) }} in (select value_hash from shared_hashes)
  and {% for c in columns %}{{ c }} is not null{% if not loop.last %} and {% endif %}{% endfor %}
group by {{ key }}
having count(*) > 1
{% endtest %}
