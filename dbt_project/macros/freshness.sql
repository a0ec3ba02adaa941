{% macro collect_freshness(source, loaded_at_field, filter) %}
    {#- dbt's own source freshness (`dbt source freshness`: the warn_after / error_after of the sources YAML, judged
        by dbt), measured at the extraction being processed when the var extraction_date is set (the refresh sets
        it), at the wall clock otherwise (`oncopipe dbt freshness`).

        Why not always the wall clock: loaded_at_field is the extraction date of the newest accepted extraction of
        the source, so at the wall clock every refresh of an extraction older than error_after (catching up on
        pending extractions, oldest first; re-running one; the synthetic demo's fixed dates) would stop, and a
        re-run would stop tomorrow where it passed today. At the processed extraction, the age of a source is how
        far its newest accepted extraction lags behind the one being published: a delta source missing from the
        delivery (its dispensings or stays stopping months early) errors, a referential not redelivered warns.

        Replaces dbt's collect_freshness (a root-project macro wins over dbt's of the same name), with the SQL of
        dbt's default__collect_freshness and only snapshotted_at changed; engine-neutral (DuckDB and Spark). -#}
    {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
        select
            max({{ loaded_at_field }}) as max_loaded_at,
            {% if var('extraction_date', '') -%}
            cast('{{ var("extraction_date") }}' as timestamp)
            {%- else -%}
            {{ current_timestamp() }}
            {%- endif %} as snapshotted_at
        from {{ source }}
        {% if filter %}
        where {{ filter }}
        {% endif %}
    {% endcall %}
    {{ return(load_result('collect_freshness')) }}
{% endmacro %}
