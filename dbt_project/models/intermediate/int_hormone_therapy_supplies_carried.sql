{%- set paused = hospital_days_paused() -%}
-- Steps (the carry-over rule, steps 2-3 of the PDC rule)
-- 1. Order each person's hormone-therapy dispensings by date, CIP13, line: whatever the molecule, a
--    dispensing continues the same treatment (carry-over across molecules of the class and switches).
-- 2. Timeline: with hospital_days = covered_paused the home supply is paused in hospital, so the carry-over
--    runs on the compressed timeline that skips hospital days: a dispensing on day t enters it at
--    t - (hospital days before t); a dispensing made in hospital thus starts the day after the exit.
--    With hospital_days = ignore the timeline is the calendar.
-- 3. Carry-over without recursion: the sequential rule start_d = max(t_d, end_{d-1} + 1),
--    end_d = start_d + s_d - 1 unrolls to end_d = max_{j<=d} (t_j + s_j + ... + s_d) - 1
--    = S_d + max_{j<=d} (t_j - S_{j-1}) - 1 with S the running supply: one running sum, one running max.
-- 4. Back to dates: compressed day k is the k-th day outside hospital; it is k plus the hospital days of the
--    runs that start on the compressed timeline at or before k (an ASOF join on the merged runs).
with

dispensings as (

    select * from {{ ref('int_hormone_therapy_dispensings_netted') }}

),

runs as (

    select * from {{ ref('int_hospital_stays_merged') }}
    {%- if not paused %}
    where false  -- hospital_days = ignore: no stay shifts a supply
    {%- endif %}

),

positioned as (

    select
        d.*,
        {{ day_number('d.dispensing_date') }} - {{ hospital_days_before('r', 'd.dispensing_date') }}
            as dispensing_day_c
    from dispensings as d
    {{ asof_left_join('runs', 'r', 'person_id', 'd.person_id', 'start_date', '<', 'd.dispensing_date') }}

),

cumulated as (

    select
        *,
        row_number() over by_date as dispensing_seq,
        sum(supply_days) over by_date as supply_through
    from positioned
    window by_date as (partition by person_id order by dispensing_date, cip13, dispensing_id rows unbounded preceding)

),

carried as (

    select
        *,
        supply_through + max(dispensing_day_c - (supply_through - supply_days)) over (
            partition by person_id order by dispensing_seq rows unbounded preceding
        ) as supply_end_exclusive_c
    from cumulated

),

bounded as (

    select
        *,
        cast(supply_end_exclusive_c - supply_days as integer) as supply_start_day_c,
        cast(supply_end_exclusive_c - 1 as integer) as supply_end_day_c
    from carried

),

dated as (

    select
        b.*,
        date '1970-01-01' + cast(b.supply_start_day_c + coalesce(rs.days_before + rs.days, 0) as integer)
            as supply_start_date
    from bounded as b
    {{ asof_left_join('runs', 'rs', 'person_id', 'b.person_id', 'compressed_start', '<=', 'b.supply_start_day_c') }}

),

final as (

    select
        d.dispensing_id,
        d.person_id,
        d.dispensing_seq,
        d.dispensing_date,
        d.cip13,
        d.atc_code,
        d.molecule,
        d.therapy_class,
        d.supply_days,
        d.dispensing_day_c,
        d.supply_start_day_c,
        d.supply_end_day_c,
        d.supply_start_date,
        date '1970-01-01' + cast(d.supply_end_day_c + coalesce(re.days_before + re.days, 0) as integer)
            as supply_end_date,
        '{{ var("hospital_days") }}' as hospital_days_option
    from dated as d
    {{ asof_left_join('runs', 're', 'person_id', 'd.person_id', 'compressed_start', '<=', 'd.supply_end_day_c') }}

)

select * from final
