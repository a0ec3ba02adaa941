-- No cancer treatment (act, session or dispensing) is dated before the birth month of its patient.
select t.person_id, t.treatment_kind, t.treatment_date, p.birth_month_start
from {{ ref('int_cancer_treatments_identified') }} as t
inner join {{ ref('int_persons_enriched') }} as p on p.person_id = t.person_id
where t.treatment_date < p.birth_month_start
