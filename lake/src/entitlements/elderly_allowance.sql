-- 高龄津贴: the latest month the allowance system paid (up to the day's month); due to
-- everyone registered and alive on its first day by the band reached by its last day.
WITH {common},
month AS (
    SELECT max(period) AS period FROM mca.elderly_allowance_payment
    WHERE period <= to_char({as_of}, '%Y-%m')
),
bounds AS (
    SELECT period, to_date(concat(period, '-01')) AS first_day,
           CAST(to_date(concat(period, '-01')) + INTERVAL '1 month' - INTERVAL '1 day' AS DATE) AS last_day
    FROM month WHERE period IS NOT NULL
),
due AS (
    SELECT resident_id, name,
           CASE WHEN age >= 100 THEN 4 WHEN age >= 90 THEN 3 WHEN age >= 80 THEN 2 ELSE 1 END AS due_rank
    FROM (
        SELECT p.resident_id, p.name, {age(p.birth_date, b.last_day)} AS age
        FROM person p CROSS JOIN bounds b
        WHERE {registered(p, b.first_day)} AND {alive(p, b.first_day)}
    ) a
    WHERE age >= 70
),
pay AS (
    SELECT x.resident_id, max(x.name) AS name,
           max(CASE WHEN x.status = 'paid' THEN {rank(x.band)} END) AS paid_rank,
           max(CASE WHEN x.status <> 'paid' THEN x.status END) AS other_status
    FROM mca.elderly_allowance_payment x JOIN bounds b ON x.period = b.period
    GROUP BY x.resident_id
)
SELECT 'elderly_allowance' AS benefit, 'entitled_not_receiving' AS direction,
       CASE WHEN y.resident_id IS NULL THEN 'not_paid'
            WHEN y.paid_rank IS NULL AND y.other_status IS NULL THEN 'not_paid'
            WHEN y.paid_rank IS NULL THEN concat('payment_', y.other_status)
            ELSE 'band_not_upgraded' END AS rule,
       d.resident_id, d.name, {band(d.due_rank)} AS item,
       'ps.household_registration mca.elderly_allowance_payment' AS evidence
FROM due d LEFT JOIN pay y ON y.resident_id = d.resident_id
WHERE y.paid_rank IS NULL OR y.paid_rank < d.due_rank
UNION ALL
SELECT benefit, direction, rule, resident_id, name, item, evidence FROM (
    SELECT 'elderly_allowance' AS benefit, 'receiving_not_entitled' AS direction,
           CASE WHEN k.died < b.first_day THEN 'deceased'
                WHEN p.resident_id IS NULL OR NOT ({registered(p, b.first_day)}) THEN 'not_registered'
                WHEN d.resident_id IS NULL THEN 'under_age'
                WHEN y.paid_rank > d.due_rank THEN 'over_band' END AS rule,
           y.resident_id, y.name, {band(y.paid_rank)} AS item,
           CASE WHEN k.died < b.first_day THEN concat('mca.elderly_allowance_payment ', k.evidence)
                ELSE 'mca.elderly_allowance_payment ps.household_registration' END AS evidence
    FROM pay y CROSS JOIN bounds b
    LEFT JOIN died k ON k.resident_id = y.resident_id
    LEFT JOIN person p ON p.resident_id = y.resident_id
    LEFT JOIN due d ON d.resident_id = y.resident_id
    WHERE y.paid_rank IS NOT NULL
) o
WHERE rule IS NOT NULL
