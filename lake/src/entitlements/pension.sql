-- 基本养老金: due from the month after the retirement age (60 for men, 55 for women) to
-- anyone enrolled in pension insurance; paid only while alive.
WITH {common},
active AS (
    SELECT resident_id, max(name) AS name, max(pension_type) AS pension_type
    FROM hrss.pension WHERE status = 'active' GROUP BY resident_id
),
enrolled AS (
    SELECT DISTINCT resident_id FROM hrss.social_insurance_enrolment
    WHERE insurance_type = 'pension'
)
SELECT 'pension' AS benefit, 'receiving_not_entitled' AS direction, 'deceased' AS rule,
       a.resident_id, a.name, a.pension_type AS item,
       concat('hrss.pension ', k.evidence) AS evidence
FROM active a JOIN died k ON k.resident_id = a.resident_id
WHERE k.died < {as_of}
UNION ALL
SELECT 'pension', 'entitled_not_receiving', 'no_pension', p.resident_id, p.name, 'pension',
       'ps.household_registration hrss.social_insurance_enrolment'
FROM person p
JOIN enrolled e ON e.resident_id = p.resident_id
LEFT JOIN active a ON a.resident_id = p.resident_id
WHERE a.resident_id IS NULL
  AND {registered(p, {as_of})} AND {alive(p, {as_of})}
  AND CAST(make_date(CAST(date_part('year', p.birth_date) AS INT)
                       + CASE WHEN p.gender = '1' THEN 60 ELSE 55 END,
                     CAST(date_part('month', p.birth_date) AS INT), 1)
           + INTERVAL '1 month' AS DATE) <= {as_of}
