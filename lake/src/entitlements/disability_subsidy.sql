-- 残疾人两项补贴: the care subsidy (重度残疾人护理补贴) for a valid certificate of grade 1–2,
-- the living subsidy (困难残疾人生活补贴) for a valid certificate in a household on
-- subsistence allowance; only while registered here and alive.
WITH {common},
cert AS (
    SELECT resident_id, min(disability_grade) AS grade FROM mca.disability_certificate
    WHERE status = 'valid' AND valid_until >= {as_of}
    GROUP BY resident_id
),
poor AS (
    SELECT DISTINCT household_id FROM mca.subsistence_allowance
    WHERE status = 'active' AND start_date <= {as_of} AND household_id IS NOT NULL
),
here AS (
    SELECT p.resident_id, p.name, p.household_id FROM person p
    WHERE {registered(p, {as_of})} AND {alive(p, {as_of})}
),
entitled AS (
    SELECT h.resident_id, h.name, 'care' AS item, 'mca.disability_certificate' AS evidence
    FROM here h JOIN cert c ON c.resident_id = h.resident_id WHERE c.grade <= 2
    UNION ALL
    SELECT h.resident_id, h.name, 'living', 'mca.disability_certificate mca.subsistence_allowance'
    FROM here h JOIN cert c ON c.resident_id = h.resident_id
    JOIN poor s ON s.household_id = h.household_id
),
receiving AS (
    SELECT resident_id, max(name) AS name, subsidy_type AS item FROM mca.disability_subsidy
    WHERE status = 'active' GROUP BY resident_id, subsidy_type
)
SELECT 'disability_subsidy' AS benefit, 'entitled_not_receiving' AS direction,
       'not_receiving' AS rule, e.resident_id, e.name, e.item,
       concat('ps.household_registration ', e.evidence) AS evidence
FROM entitled e
LEFT JOIN receiving r ON r.resident_id = e.resident_id AND r.item = e.item
WHERE r.resident_id IS NULL
UNION ALL
SELECT 'disability_subsidy', 'receiving_not_entitled',
       CASE WHEN k.died < {as_of} THEN 'deceased'
            WHEN p.resident_id IS NULL OR NOT ({registered(p, {as_of})}) THEN 'not_registered'
            WHEN c.resident_id IS NULL THEN 'certificate_not_valid'
            WHEN r.item = 'care' THEN 'grade_not_severe'
            ELSE 'household_not_on_subsistence' END,
       r.resident_id, r.name, r.item,
       CASE WHEN k.died < {as_of} THEN concat('mca.disability_subsidy ', k.evidence)
            WHEN c.resident_id IS NULL THEN 'mca.disability_subsidy mca.disability_certificate'
            ELSE 'mca.disability_subsidy ps.household_registration' END
FROM receiving r
LEFT JOIN entitled e ON e.resident_id = r.resident_id AND e.item = r.item
LEFT JOIN died k ON k.resident_id = r.resident_id
LEFT JOIN person p ON p.resident_id = r.resident_id
LEFT JOIN cert c ON c.resident_id = r.resident_id
WHERE e.resident_id IS NULL
