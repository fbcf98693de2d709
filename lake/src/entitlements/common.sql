died AS (
    SELECT resident_id, min(died) AS died,
           concat_ws(' ', max(ps), max(nhc), max(mca)) AS evidence
    FROM (
        SELECT resident_id, deceased_on AS died, 'ps.household_registration' AS ps,
               CAST(NULL AS VARCHAR) AS nhc, CAST(NULL AS VARCHAR) AS mca
        FROM ps.household_registration WHERE deceased_on IS NOT NULL
        UNION ALL
        SELECT resident_id, date_of_death, NULL, 'nhc.death_certificate', NULL
        FROM nhc.death_certificate WHERE date_of_death IS NOT NULL
        UNION ALL
        SELECT resident_id, date_of_death, NULL, NULL, 'mca.cremation'
        FROM mca.cremation WHERE date_of_death IS NOT NULL
    ) d
    GROUP BY resident_id
),
person AS (
    SELECT r.resident_id, r.name, r.gender, r.birth_date, r.household_id, r.registered_on,
           r.moved_out_on, d.died, d.evidence AS death_evidence
    FROM ps.household_registration r
    LEFT JOIN died d ON d.resident_id = r.resident_id
)
