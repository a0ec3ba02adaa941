-- Each woman of the endocrine cohort has exactly follow_up_months consecutive months 0..n-1 in the monthly mart,
-- and their days add up to her follow-up days.
with

months as (

    select person_id, count(*) as n_months, max(month_index) as last_month, sum(days_in_month) as days
    from {{ ref('endocrine_adherence_monthly') }}
    group by person_id

)

select c.person_id, c.follow_up_months, m.n_months, c.follow_up_days, m.days
from {{ ref('breast_cancer_endocrine_cohort') }} as c
left join months as m on m.person_id = c.person_id
where m.n_months is distinct from c.follow_up_months
   or m.last_month is distinct from c.follow_up_months - 1
   or m.days is distinct from c.follow_up_days
