{%- set paused = hospital_days_paused() -%}
-- Steps (the PDC rule; supplies and carry-over come from int_hormone_therapy_supplies_carried)
-- 1. Month windows: month k = [index + k months, index + (k+1) months - 1 day] (calendar months clamped to the
--    month end, always from the index date), truncated at the follow-up end; a month exists when it starts
--    on/before the follow-up end.
-- 2. Hospital days in a window = hospital days before its end + 1 minus hospital days before its start (two
--    ASOF joins on the merged hospital runs; no day is expanded).
-- 3. Supplied days: the window's days outside hospital are one range of the compressed timeline (with
--    hospital_days = ignore, the calendar range itself); the supplies there are disjoint after carry-over,
--    so the supplied days are the sum of their overlaps with that range, per molecule.
-- 4. days_covered = supplied days + hospital days (covered_paused) or supplied days (ignore);
--    pdc = days_covered / days_in_month; molecule = the one supplying most days (ties: alphabetical).
-- 5. Discontinuation: the covered intervals of the follow-up (supplies in dates, plus hospital runs with
--    covered_paused) leave runs of uncovered days; the first run of >= discontinuation_gap_days days (a run
--    cut by the follow-up end counts only if it already lasts that long: death first is a competing risk)
--    starts the discontinuation; months starting on/after its first day are discontinued.
with

cohort as (

    select person_id, index_date, follow_up_end_date from {{ ref('breast_cancer_endocrine_cohort') }}

),

supplies as (

    select * from {{ ref('int_hormone_therapy_supplies_carried') }}

),

runs as (

    select * from {{ ref('int_hospital_stays_merged') }}

),

months as (

    select
        c.person_id,
        c.index_date,
        c.follow_up_end_date,
        cast(k.i as integer) as month_index,
        {{ add_months('c.index_date', 'k.i') }} as month_start,
        least({{ add_months('c.index_date', 'k.i + 1') }} - 1, c.follow_up_end_date) as month_end
    from cohort as c
    cross join {{ integer_series(var('endocrine_follow_up_months'), 'k', 'i') }}
    where {{ add_months('c.index_date', 'k.i') }} <= c.follow_up_end_date

),

with_start as (

    select
        m.*,
        {{ hospital_days_before('r', 'm.month_start') }} as hospital_days_before_start
    from months as m
    {{ asof_left_join('runs', 'r', 'person_id', 'm.person_id', 'start_date', '<', 'm.month_start') }}

),

windows as (

    select
        w.*,
        {{ hospital_days_before('r', 'w.month_end + 1') }} as hospital_days_before_next
    from with_start as w
    {{ asof_left_join('runs', 'r', 'person_id', 'w.person_id', 'start_date', '<', 'w.month_end + 1') }}

),

compressed_windows as (

    select
        *,
        cast(hospital_days_before_next - hospital_days_before_start as integer) as days_hospitalised,
        {%- if paused %}
        {{ day_number('month_start') }} - hospital_days_before_start as window_start_c,
        {{ day_number('month_end + 1') }} - hospital_days_before_next - 1 as window_end_c
        {%- else %}
        {{ day_number('month_start') }} as window_start_c,
        {{ day_number('month_end') }} as window_end_c
        {%- endif %}
    from windows

),

supplied_by_molecule as (

    select
        w.person_id,
        w.month_index,
        s.molecule,
        sum(least(s.supply_end_day_c, w.window_end_c) - greatest(s.supply_start_day_c, w.window_start_c) + 1)
            as days_supplied
    from compressed_windows as w
    inner join supplies as s
        on s.person_id = w.person_id
        and s.supply_start_day_c <= w.window_end_c
        and s.supply_end_day_c >= w.window_start_c
    group by w.person_id, w.month_index, s.molecule

),

supplied as (

    select
        person_id,
        month_index,
        sum(days_supplied) as days_supplied,
        {{ first_by('molecule', [['days_supplied', 'desc'], ['molecule', 'asc']]) }} as molecule
    from supplied_by_molecule
    group by person_id, month_index

),

covered_intervals as (

    select person_id, supply_start_date as start_date, supply_end_date as end_date from supplies
    {%- if paused %}
    union all
    select person_id, start_date, end_date from runs
    {%- endif %}

),

clipped as (

    select
        i.person_id,
        c.index_date,
        c.follow_up_end_date,
        greatest(i.start_date, c.index_date) as start_date,
        least(i.end_date, c.follow_up_end_date) as end_date
    from covered_intervals as i
    inner join cohort as c
        on c.person_id = i.person_id
        and i.end_date >= c.index_date
        and i.start_date <= c.follow_up_end_date

),

ordered as (

    select
        *,
        max(end_date) over (
            partition by person_id order by start_date, end_date rows between unbounded preceding and 1 preceding
        ) as previous_end
    from clipped

),

gaps as (

    select person_id, coalesce(previous_end + 1, index_date) as gap_start, start_date - 1 as gap_end
    from ordered
    where start_date > coalesce(previous_end + 1, index_date)

    union all

    select person_id, max(end_date) + 1 as gap_start, any_value(follow_up_end_date) as gap_end
    from clipped
    group by person_id
    having max(end_date) < any_value(follow_up_end_date)

),

discontinuations as (

    select person_id, min(gap_start) as discontinuation_date
    from gaps
    where {{ days_between('gap_start', 'gap_end') }} + 1 >= {{ var('discontinuation_gap_days') }}
    group by person_id

),

final as (

    select
        cast(w.person_id as string) as person_id,
        cast(w.month_index as integer) as month_index,
        cast(w.month_start as date) as month_start,
        cast(w.month_end as date) as month_end,
        cast({{ days_between('w.month_start', 'w.month_end') }} + 1 as integer) as days_in_month,
        cast(coalesce(s.days_supplied, 0) {% if paused %}+ w.days_hospitalised{% endif %} as integer)
            as days_covered,
        cast(w.days_hospitalised as integer) as days_hospitalised,
        cast(
            (coalesce(s.days_supplied, 0) {% if paused %}+ w.days_hospitalised{% endif %})
            / ({{ days_between('w.month_start', 'w.month_end') }} + 1)
        as double) as pdc,
        cast(s.molecule as string) as molecule,
        cast(coalesce(w.month_start >= d.discontinuation_date, false) as boolean) as is_discontinued
    from compressed_windows as w
    left join supplied as s on s.person_id = w.person_id and s.month_index = w.month_index
    left join discontinuations as d on d.person_id = w.person_id

)

select * from final
