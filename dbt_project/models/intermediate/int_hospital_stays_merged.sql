-- Steps
-- 1. Every linked stay is a run of hospital days, entry..exit inclusive (a day case counts its one day).
-- 2. Overlapping or adjacent stays of a person merge into one run (gaps and islands on the running max exit).
-- 3. For the PDC rule (hospital days "covered_paused"): days_before = hospital days of the person before the
--    run, and compressed_start = the run's position on the timeline without hospital days
--    (day number of the entry - days_before), which the carry-over runs on.
with

stays as (

    select person_id, entry_date, exit_date from {{ ref('int_stays_linked') }}

),

ordered as (

    select
        *,
        max(exit_date) over (
            partition by person_id order by entry_date, exit_date
            rows between unbounded preceding and 1 preceding
        ) as previous_max_exit
    from stays

),

islands as (

    select
        *,
        sum(case when previous_max_exit is null or entry_date > previous_max_exit + 1 then 1 else 0 end) over (
            partition by person_id order by entry_date, exit_date rows unbounded preceding
        ) as run_number
    from ordered

),

merged as (

    select
        person_id,
        run_number,
        min(entry_date) as start_date,
        max(exit_date) as end_date,
        count(*) as n_stays
    from islands
    group by person_id, run_number

),

final as (

    select
        person_id,
        run_number,
        start_date,
        end_date,
        cast({{ days_between('start_date', 'end_date') }} + 1 as integer) as days,
        n_stays,
        cast(coalesce(sum({{ days_between('start_date', 'end_date') }} + 1) over (
            partition by person_id order by start_date rows between unbounded preceding and 1 preceding
        ), 0) as integer) as days_before,
        cast({{ days_between("date '1970-01-01'", 'start_date') }} - coalesce(sum({{ days_between('start_date', 'end_date') }} + 1) over (
            partition by person_id order by start_date rows between unbounded preceding and 1 preceding
        ), 0) as integer) as compressed_start
    from merged

)

select * from final
