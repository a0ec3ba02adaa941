{% test unique_combination_of_columns(model, columns) %}
{#- The combination of `columns` identifies a row (as dbt_utils' test of the same name, without the package). -#}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
