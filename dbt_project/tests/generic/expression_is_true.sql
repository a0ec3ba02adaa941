{% test expression_is_true(model, expression, column_name=none) %}
{#- Every row satisfies `expression` (rows where it is false or null fail); column_name is only a label. -#}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
