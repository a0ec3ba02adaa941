-- No incident case (any site, any source) belongs to a person recorded dead before its diagnosis.
select c.case_id, c.person_id, c.site, c.diagnosis_date, p.death_date
from {{ ref('int_cancer_cases_identified') }} as c
inner join {{ ref('int_persons_enriched') }} as p on p.person_id = c.person_id
where p.death_date < c.diagnosis_date
