-- Steps
-- 1. Hormone-therapy lines: the dispensed CIP13's ATC code (drug referential IR_PHA_R) is an endocrine therapy
--    of the seed atc_hormone_therapies. Units per box come from the referential, not from a seed.
-- 2. Net regularisations: the lines of one person, day and CIP13 are summed, so a negative regularisation line
--    cancels the matching earlier line; a day whose net is <= 0 boxes disappears. Summing same-day lines of one
--    presentation never changes coverage: they are consecutive in the carry-over order (date, CIP13, line).
-- 3. Supply days = boxes x units per box (one tablet a day).
with

dispensings as (

    select * from {{ ref('stg_snds__pharmacy_dispensings') }}

),

drugs as (

    select * from {{ ref('stg_snds__drugs') }}

),

hormone_therapies as (

    select * from {{ ref('atc_hormone_therapies') }}

),

hormone_lines as (

    select
        d.fund_key || '-' || cast(d.claim_number as string) || '-' || cast(d.claim_line_number as string)
            as line_id,
        d.person_id,
        d.dispensing_date,
        d.cip13,
        g.atc_code,
        h.molecule,
        h.therapy_class,
        g.units_per_box,
        d.boxes
    from dispensings as d
    inner join drugs as g on g.cip13 = d.cip13
    inner join hormone_therapies as h on h.atc_code = g.atc_code
    where d.person_id is not null
      and d.dispensing_date is not null
      and d.boxes is not null

),

netted as (

    select
        min(line_id) filter (where boxes > 0) as dispensing_id,
        person_id,
        dispensing_date,
        cip13,
        any_value(atc_code) as atc_code,
        any_value(molecule) as molecule,
        any_value(therapy_class) as therapy_class,
        any_value(units_per_box) as units_per_box,
        cast(sum(boxes) as integer) as boxes,
        count(*) as n_lines
    from hormone_lines
    group by person_id, dispensing_date, cip13

),

final as (

    select
        dispensing_id,
        person_id,
        dispensing_date,
        cip13,
        atc_code,
        molecule,
        therapy_class,
        units_per_box,
        boxes,
        boxes * units_per_box as supply_days,
        n_lines
    from netted
    where boxes > 0 and units_per_box > 0

)

select * from final
