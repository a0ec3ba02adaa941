{% macro exclude_implausible_lines(source_name) -%}
    {#- A where-clause predicate over the landed columns: true on the lines no exclusion rule of `source_name`
        breaks (var line_exclusions in dbt_project.yml, the definition the raw gate counts in its ledger:
        oncopipe.quality.exclusions). A predicate that is null (an unreadable value) keeps the line, as the gate
        does not count it. -#}
    {%- set rules = var('line_exclusions', {}).get(source_name, []) -%}
    {%- if rules -%}
        not coalesce(
        {%- for rule in rules %}
            ({{ rule['breaks'] | replace('{extraction}', 'cast(extraction as date)') }}){% if not loop.last %} or{% endif %}
        {%- endfor %},
            false)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
