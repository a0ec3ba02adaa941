{#- Engine-specific SQL, in one place (issue #23): every model is written once and calls these macros where DuckDB
    (dbt-duckdb, the embedded default) and Spark (dbt-spark) differ. Each macro dispatches on the adapter
    (`adapter.dispatch`: duckdb__ / spark__ / default__); dbt's own cross-database macros are used where they
    exist (dbt.type_string ...). Written engine-neutral in the models instead (both engines accept it):
    `string` casts (a DuckDB alias of varchar; Spark refuses `varchar` without a length), no trailing comma before
    FROM, `[.]` for a literal dot in a regular expression (Spark unescapes backslashes in string literals),
    month boundaries counted from year * 12 + month, the CIP13 check digit as an unrolled sum.
    QUALIFY is kept: Spark parses it from 4.2 on (the lock pins pyspark 4.3), and GX never runs on Spark here (the
    gates compute facts in SQL and let GX judge small pandas frames), so GX's Spark extra (pyspark < 4.2) is not
    needed. -#}


{% macro regex_full_match(column, pattern) -%}
    {#- True when the whole of `column` matches `pattern` (null for a null column). -#}
    {{- return(adapter.dispatch('regex_full_match', 'oncopipe')(column, pattern)) -}}
{%- endmacro %}

{% macro default__regex_full_match(column, pattern) -%}
    regexp_full_match({{ column }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__regex_full_match(column, pattern) -%}
    ({{ column }} rlike '^(?:{{ pattern }})$')
{%- endmacro %}


{% macro hash64(columns) -%}
    {#- A 64-bit hash of one or more columns (a comma-separated list). DuckDB's hash() is 64-bit; Spark's hash() is
        a 32-bit murmur3, which would make collisions ~4 billion times likelier than the exactness arguments of
        unique_by_hash and the dispensing dedup assume: xxhash64 there. -#}
    {{- return(adapter.dispatch('hash64', 'oncopipe')(columns)) -}}
{%- endmacro %}

{% macro default__hash64(columns) -%}
    hash({{ columns }})
{%- endmacro %}

{% macro spark__hash64(columns) -%}
    xxhash64({{ columns }})
{%- endmacro %}


{% macro cte_not_materialized() -%}
    {#- `with x as not materialized (...)`: DuckDB re-reads the source at each use; Spark inlines CTEs anyway. -#}
    {{- return(adapter.dispatch('cte_not_materialized', 'oncopipe')()) -}}
{%- endmacro %}

{% macro default__cte_not_materialized() -%}not materialized{%- endmacro %}

{% macro spark__cte_not_materialized() -%}{%- endmacro %}


{% macro days_between(start_expr, end_expr) -%}
    {#- Whole days from start to end (end - start), an integer. Spark's date - date is an interval. -#}
    {{- return(adapter.dispatch('days_between', 'oncopipe')(start_expr, end_expr)) -}}
{%- endmacro %}

{% macro default__days_between(start_expr, end_expr) -%}
    (({{ end_expr }}) - ({{ start_expr }}))
{%- endmacro %}

{% macro spark__days_between(start_expr, end_expr) -%}
    datediff({{ end_expr }}, {{ start_expr }})
{%- endmacro %}


{% macro month_boundaries(start_expr, end_expr) -%}
    {#- Calendar month boundaries crossed from start to end (DuckDB's date_diff('month', start, end)). -#}
    ((year({{ end_expr }}) * 12 + month({{ end_expr }})) - (year({{ start_expr }}) * 12 + month({{ start_expr }})))
{%- endmacro %}


{% macro add_months_clamped(date_expr, months_expr) -%}
    {#- Calendar months, clamped to the month end (Jan 31 + 1 month = Feb 28/29), a date. -#}
    {{- return(adapter.dispatch('add_months_clamped', 'oncopipe')(date_expr, months_expr)) -}}
{%- endmacro %}

{% macro default__add_months_clamped(date_expr, months_expr) -%}
    cast(({{ date_expr }}) + to_months(cast({{ months_expr }} as integer)) as date)
{%- endmacro %}

{% macro spark__add_months_clamped(date_expr, months_expr) -%}
    {#- Spark >= 3.0 clamps and never moves a month-end to the next month's end (Feb 28 + 1 month = Mar 28). -#}
    add_months({{ date_expr }}, cast({{ months_expr }} as integer))
{%- endmacro %}


{% macro month_start_minus(date_expr, months, days) -%}
    {#- The first day of the month of date_expr, minus `months` months, minus `days` days (integer literals). -#}
    {{- return(adapter.dispatch('month_start_minus', 'oncopipe')(date_expr, months, days)) -}}
{%- endmacro %}

{% macro default__month_start_minus(date_expr, months, days) -%}
    cast(date_trunc('month', {{ date_expr }}) - to_months({{ months }}) - interval {{ days }} day as date)
{%- endmacro %}

{% macro spark__month_start_minus(date_expr, months, days) -%}
    date_sub(add_months(trunc({{ date_expr }}, 'MM'), -{{ months }}), {{ days }})
{%- endmacro %}


{% macro first_by(value, order_by) -%}
    {#- Aggregate: the `value` of the first row in `order_by`, a list of [expression, 'asc' | 'desc'] pairs
        (a 'desc' key must be numeric). -#}
    {{- return(adapter.dispatch('first_by', 'oncopipe')(value, order_by)) -}}
{%- endmacro %}

{% macro default__first_by(value, order_by) -%}
    first({{ value }} order by {% for key in order_by %}{{ key[0] }} {{ key[1] }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{% macro spark__first_by(value, order_by) -%}
    min_by({{ value }}, struct({% for key in order_by %}{% if key[1] == 'desc' %}-{% endif %}{{ key[0] }}{% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}


{% macro integer_series(n, alias, column) -%}
    {#- A relation `alias` with one integer column `column` = 0 .. n - 1. -#}
    {{- return(adapter.dispatch('integer_series', 'oncopipe')(n, alias, column)) -}}
{%- endmacro %}

{% macro default__integer_series(n, alias, column) -%}
    range(0, {{ n }}) as {{ alias }}({{ column }})
{%- endmacro %}

{% macro spark__integer_series(n, alias, column) -%}
    (select explode(sequence(0, {{ n }} - 1)) as {{ column }}) as {{ alias }}
{%- endmacro %}


{% macro asof_left_join(relation, alias, key, probe_key, order_column, op, probe) -%}
    {#- `left join relation as alias` on alias.key = probe_key, keeping the one row of the key with the greatest
        alias.order_column that is `op` ('<' or '<=') probe, or nulls when there is none (an ASOF join).
        On Spark (no ASOF join): each row of `relation` carries the next order_column of its key, and the match is
        the row whose [order_column, next) holds the probe; exact when order_column is strictly increasing within a
        key, as for the merged hospital runs (start_date and compressed_start). -#}
    {%- if op not in ('<', '<=') -%}
        {{ exceptions.raise_compiler_error("asof_left_join: op must be '<' or '<=', got '" ~ op ~ "'") }}
    {%- endif -%}
    {{- return(adapter.dispatch('asof_left_join', 'oncopipe')(relation, alias, key, probe_key, order_column, op, probe)) -}}
{%- endmacro %}

{% macro default__asof_left_join(relation, alias, key, probe_key, order_column, op, probe) -%}
    asof left join {{ relation }} as {{ alias }}
        on {{ alias }}.{{ key }} = {{ probe_key }}
        and {{ alias }}.{{ order_column }} {{ op }} {{ probe }}
{%- endmacro %}

{% macro spark__asof_left_join(relation, alias, key, probe_key, order_column, op, probe) -%}
    left join (
        select *, lead({{ order_column }}) over (partition by {{ key }} order by {{ order_column }}) as _asof_next
        from {{ relation }}
    ) as {{ alias }}
        on {{ alias }}.{{ key }} = {{ probe_key }}
        and {{ alias }}.{{ order_column }} {{ op }} {{ probe }}
        and ({{ alias }}._asof_next is null or not ({{ alias }}._asof_next {{ op }} {{ probe }}))
{%- endmacro %}


{% macro stay_incremental_config(unique_key) -%}
    {#- The materialization of the delta-source staging models (PMSI, pharmacy flux). DuckDB: incremental,
        delete+insert on the line key, so a line re-sent in a later extraction replaces the loaded one and an
        incremental run equals a full refresh. Spark without a table format (Delta/Iceberg jars are not reachable
        here) has no delete by key: insert_overwrite replaces whole partitions, and a re-sent stay lives in
        another extraction's partition than its first version, so it would be kept twice. There the model is a
        Parquet table rebuilt from every accepted extraction at each run, which is what a full refresh gives, so
        both engines publish the same marts. -#}
    {{- return(adapter.dispatch('stay_incremental_config', 'oncopipe')(unique_key)) -}}
{%- endmacro %}

{% macro default__stay_incremental_config(unique_key) -%}
    {{- return({'materialized': 'incremental', 'unique_key': unique_key, 'incremental_strategy': 'delete+insert',
                'on_schema_change': 'fail'}) -}}
{%- endmacro %}

{% macro spark__stay_incremental_config(unique_key) -%}
    {{- return({'materialized': 'table', 'file_format': 'parquet'}) -}}
{%- endmacro %}


{% macro landing_tables() -%}
    {#- The names of the relations in the landing schema. -#}
    {{- return(adapter.dispatch('landing_tables', 'oncopipe')()) -}}
{%- endmacro %}

{% macro default__landing_tables() -%}
    {{- return(run_query("select table_name from information_schema.tables where table_schema = 'landing'"
                         ).columns[0].values()) -}}
{%- endmacro %}

{% macro spark__landing_tables() -%}
    {#- SHOW TABLES IN landing: namespace, tableName, isTemporary. -#}
    {%- set found = run_query("show tables in landing") -%}
    {{- return(found.columns[1].values()) -}}
{%- endmacro %}


{% macro spark__load_csv_rows(model, agate_table) %}
    {#- dbt-spark's loader binds each value with %s, which its session cursor substitutes unquoted: a text
        value with an apostrophe ("Côte d'Azur") breaks the insert. Values are written as escaped literals here
        (the same SQL for session and thrift). -#}
    {% set batch_size = get_batch_size() %}
    {% set column_override = model['config'].get('column_types', {}) %}
    {% set statements = [] %}
    {% for chunk in agate_table.rows | batch(batch_size) %}
        {% set sql %}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                    {%- set type = column_override.get(col_name, inferred_type) -%}
                    {%- set value = row[loop.index0] -%}
                    cast({{ oncopipe_sql_literal(value) }} as {{ type }})
                    {%- if not loop.last %},{% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},{% endif %}
            {%- endfor %}
        {% endset %}
        {% do adapter.add_query(sql, abridge_sql_log=True) %}
        {% if loop.index0 == 0 %}
            {% do statements.append(sql) %}
        {% endif %}
    {% endfor %}
    {{ return(statements[0]) }}
{% endmacro %}

{% macro oncopipe_sql_literal(value) -%}
    {%- if value is none -%}null
    {%- elif value is sameas true -%}true
    {%- elif value is sameas false -%}false
    {%- elif value is number -%}{{ value }}
    {%- else -%}'{{ (value | string).replace('\\', '\\\\').replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}


{% macro spark__get_empty_schema_sql(columns) %}
    {#- The mart contracts name DuckDB types (plugins/oncopipe/contracts/marts.py): Spark spells varchar `string`
        (a varchar needs a length there). Both sides of dbt's contract check go through this query. -#}
    {%- set spark_columns = {} -%}
    {%- for name in columns -%}
        {%- set column = columns[name].copy() -%}
        {%- if column.get('data_type') and column['data_type'] | trim | lower == 'varchar' -%}
            {%- do column.update({'data_type': 'string'}) -%}
        {%- endif -%}
        {%- do spark_columns.update({name: column}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(spark_columns)) }}
{% endmacro %}
