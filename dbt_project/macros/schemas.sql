{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Plain layer schemas (staging, intermediate, marts, reference), not <target>_<layer>. -#}
    {{- (custom_schema_name or target.schema) | trim -}}
{%- endmacro %}
