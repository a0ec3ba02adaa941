{% test unique_by_hash(model, column_name) %}
{#- The same guarantee as dbt's `unique`, for a column of ~100M distinct strings: group by a 64-bit hash of the
    value first (far less memory than the strings), then compare the values themselves only where a hash is
    shared. Equal values have equal hashes, so no duplicate escapes the first step. -#}
with shared_hashes as (

    select hash({{ column_name }}) as value_hash
    from {{ model }}
    where {{ column_name }} is not null
    group by value_hash
    having count(*) > 1

)

select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where hash({{ column_name }}) in (select value_hash from shared_hashes)
  and {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{% endtest %}
