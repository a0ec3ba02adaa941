-- Follow-up is never negative: endocrine follow-up ends on/after the index date, survival on/after diagnosis,
-- and no follow-up runs past the end of data.
select person_id, 'endocrine' as follow_up, index_date as start_date, follow_up_end_date as end_date
from {{ ref('breast_cancer_endocrine_cohort') }}
where follow_up_end_date < index_date or follow_up_end_date > end_of_data_date

union all

select person_id, 'survival', diagnosis_date, diagnosis_date + follow_up_days
from {{ ref('poor_prognosis_cases') }}
where follow_up_days < 0 or diagnosis_date + follow_up_days > end_of_data_date
