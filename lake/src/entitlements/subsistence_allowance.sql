-- 最低生活保障: a case still paid to an applicant who has died or left the district; a
-- case ended by the applicant's death while the family is still here (to re-examine: the
-- family keeps its entitlement under another applicant).
WITH {common},
cases AS (
    SELECT case_no, applicant_id, applicant_name, household_id, status, end_date
    FROM mca.subsistence_allowance
),
active_households AS (
    SELECT DISTINCT household_id FROM cases WHERE status = 'active' AND household_id IS NOT NULL
)
SELECT benefit, direction, rule, resident_id, name, item, evidence FROM (
    SELECT 'subsistence_allowance' AS benefit, 'receiving_not_entitled' AS direction,
           CASE WHEN k.died < {as_of} THEN 'applicant_deceased'
                WHEN r.resident_id IS NULL OR NOT ({registered(r, {as_of})}) THEN 'applicant_not_registered'
           END AS rule,
           c.applicant_id AS resident_id, c.applicant_name AS name, c.case_no AS item,
           CASE WHEN k.died < {as_of} THEN concat('mca.subsistence_allowance ', k.evidence)
                ELSE 'mca.subsistence_allowance ps.household_registration' END AS evidence
    FROM cases c
    LEFT JOIN died k ON k.resident_id = c.applicant_id
    LEFT JOIN ps.household_registration r ON r.resident_id = c.applicant_id
    WHERE c.status = 'active'
) o
WHERE rule IS NOT NULL
UNION ALL
SELECT 'subsistence_allowance', 'entitled_not_receiving', 'applicant_died_family_remains',
       m.resident_id, m.name, c.case_no,
       concat('mca.subsistence_allowance ', k.evidence, ' ps.household_registration')
FROM cases c
JOIN died k ON k.resident_id = c.applicant_id AND k.died <= c.end_date
JOIN person m ON m.household_id = c.household_id AND m.resident_id <> c.applicant_id
LEFT JOIN active_households h ON h.household_id = c.household_id
WHERE c.status = 'terminated' AND h.household_id IS NULL
  AND {registered(m, {as_of})} AND {alive(m, {as_of})}
