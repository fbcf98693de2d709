-- profiles.citizen: one row per resident ID, joined across departments.
-- {as_of} is the day the profile describes (ages, benefits "currently" received).
-- Identifiers flagged by ingest (`_flags` names the field) never create or join a profile.
with
hr as (
  select * from ps.household_registration
),
births as (
  -- Children the police may not have registered yet live in their mother's household.
  select b.child_id as resident_id, b.child_name as name, b.gender, b.birth_date,
    m.household_id, m.street, m.community, m.address
  from nhc.birth_certificate b
  left join ps.household_registration m on m.resident_id = b.mother_id
  where b.child_id is not null and coalesce(b._flags, '') not like '%child_id%'
),
deaths as (
  select resident_id, min(date_of_death) as date_of_death
  from nhc.death_certificate
  where coalesce(_flags, '') not like '%resident_id%'
  group by resident_id
),
cremations as (
  select resident_id, min(date_of_death) as date_of_death
  from mca.cremation
  where coalesce(_flags, '') not like '%resident_id%'
  group by resident_id
),
base as (
  select
    coalesce(hr.resident_id, b.resident_id) as resident_id,
    coalesce(hr.name, b.name) as name,
    coalesce(hr.gender, b.gender) as gender,
    coalesce(hr.birth_date, b.birth_date) as birth_date,
    coalesce(hr.household_id, b.household_id) as household_id,
    hr.relation_to_head,
    coalesce(hr.street, b.street) as street,
    coalesce(hr.community, b.community) as community,
    coalesce(hr.address, b.address) as address,
    hr.resident_id is not null as ps_registered,
    hr.registered_on,
    hr.moved_out_on as ps_moved_out_on,
    hr.moved_out_to,
    hr.status as ps_status,
    coalesce(d.date_of_death, hr.deceased_on, c.date_of_death) as died_on,
    hr.deceased_on is not null or hr.status = 'deceased' as death_registered_by_ps
  from hr
  full outer join births b on b.resident_id = hr.resident_id
  left join deaths d on d.resident_id = coalesce(hr.resident_id, b.resident_id)
  left join cremations c on c.resident_id = coalesce(hr.resident_id, b.resident_id)
),
statused as (
  select *,
    case
      when died_on is not null and died_on <= {as_of}
           and (ps_moved_out_on is null or ps_moved_out_on > died_on) then 'deceased'
      when ps_status = 'moved_out' then 'moved_out'
      else 'active'
    end as household_status,
    cast(date_part('year', {as_of}) - date_part('year', birth_date)
      - case when date_part('month', {as_of}) * 100 + date_part('day', {as_of})
                < date_part('month', birth_date) * 100 + date_part('day', birth_date)
             then 1 else 0 end as int) as age
  from base
),
households as (
  -- Active members per household, from the narrow inputs rather than from `statused` (DataFusion
  -- inlines a CTE: the million-row base would be computed a second time): registered residents
  -- and children registered only at birth, less the deceased and the moved out, decided as in
  -- `statused`.
  select household_id, count(*) as active_members
  from (
    select hr.household_id, hr.status as ps_status, hr.moved_out_on,
      coalesce(d.date_of_death, hr.deceased_on, c.date_of_death) as died_on
    from ps.household_registration hr
    left join deaths d on d.resident_id = hr.resident_id
    left join cremations c on c.resident_id = hr.resident_id
    union all
    select b.household_id, cast(null as varchar), cast(null as date),
      coalesce(d.date_of_death, c.date_of_death)
    from births b
    left join deaths d on d.resident_id = b.resident_id
    left join cremations c on c.resident_id = b.resident_id
    where not exists (
      select 1 from ps.household_registration r where r.resident_id = b.resident_id
    )
  ) m
  where household_id is not null
    and not (died_on is not null and died_on <= {as_of}
             and (moved_out_on is null or moved_out_on > died_on))
    and ps_status is distinct from 'moved_out'
  group by household_id
),
subsistence as (
  select distinct household_id from mca.subsistence_allowance
  where status = 'active' and start_date <= {as_of}
    and (end_date is null or end_date > {as_of})
),
-- Every per-person fact of the other departments, gathered in one pass and one join
-- (instead of a join per department over the million-row base).
facts as (
  select resident_id,
    max(disability_grade) as disability_grade,
    max(disability_category) as disability_category,
    coalesce(bool_or(disability_valid), false) as disability_certificate_valid,
    coalesce(bool_or(pension), false) as pension,
    coalesce(bool_or(disability_subsidy), false) as disability_subsidy,
    max(elderly_period) as elderly_allowance_last_period,
    coalesce(bool_or(pension_insurance), false) as pension_insurance,
    coalesce(bool_or(medical_insurance), false) as medical_insurance,
    coalesce(bool_or(insured), false) as insured,
    coalesce(sum(property), 0) as property_count
  from (
    select resident_id, disability_grade, disability_category, status = 'valid' as disability_valid,
      cast(null as boolean) as pension, cast(null as boolean) as disability_subsidy,
      cast(null as varchar) as elderly_period, cast(null as boolean) as pension_insurance,
      cast(null as boolean) as medical_insurance, cast(null as boolean) as insured,
      cast(null as bigint) as property
    from (
      select resident_id, disability_grade, disability_category, status,
        row_number() over (partition by resident_id order by issued_on desc, certificate_no desc) as rn
      from mca.disability_certificate
      where coalesce(_flags, '') not like '%resident_id%' and issued_on <= {as_of}
    ) where rn = 1
    union all
    select resident_id, cast(null as int), cast(null as varchar), cast(null as boolean),
      true, cast(null as boolean), cast(null as varchar), cast(null as boolean),
      cast(null as boolean), cast(null as boolean), cast(null as bigint)
    from hrss.pension where status = 'active' and start_date <= {as_of}
    union all
    select resident_id, cast(null as int), cast(null as varchar), cast(null as boolean),
      cast(null as boolean), true, cast(null as varchar), cast(null as boolean),
      cast(null as boolean), cast(null as boolean), cast(null as bigint)
    from mca.disability_subsidy
    where status = 'active' and coalesce(_flags, '') not like '%resident_id%'
    union all
    select resident_id, cast(null as int), cast(null as varchar), cast(null as boolean),
      cast(null as boolean), cast(null as boolean), period, cast(null as boolean),
      cast(null as boolean), cast(null as boolean), cast(null as bigint)
    from mca.elderly_allowance_payment
    where status = 'paid' and coalesce(_flags, '') not like '%resident_id%' and paid_on <= {as_of}
    union all
    select resident_id, cast(null as int), cast(null as varchar), cast(null as boolean),
      cast(null as boolean), cast(null as boolean), cast(null as varchar),
      insurance_type = 'pension', insurance_type = 'medical', true, cast(null as bigint)
    from hrss.social_insurance_enrolment
    where status = 'active' and coalesce(_flags, '') not like '%resident_id%'
    union all
    select owner_id, cast(null as int), cast(null as varchar), cast(null as boolean),
      cast(null as boolean), cast(null as boolean), cast(null as varchar), cast(null as boolean),
      cast(null as boolean), cast(null as boolean), cast(1 as bigint)
    from nre.property_certificate
    where status = 'active' and registered_on <= {as_of}
  ) f
  group by resident_id
),
profiled as (
  select
    s.resident_id,
    s.name,
    s.gender,
    s.birth_date,
    s.age,
    s.household_id,
    s.relation_to_head,
    s.street,
    s.community,
    s.address,
    s.household_status,
    s.registered_on,
    s.ps_registered,
    case when s.household_status = 'deceased' then s.died_on end as deceased_on,
    s.household_status = 'deceased' and not s.death_registered_by_ps as death_not_yet_registered_by_ps,
    case when s.household_status = 'moved_out' then s.ps_moved_out_on end as moved_out_on,
    case when s.household_status = 'moved_out' then s.moved_out_to end as moved_out_to,
    case
      when s.age < 3 then 'infant'
      when s.age < 7 then 'preschool'
      when s.age < 18 then 'minor'
      when s.age < 60 then 'working_age'
      when s.age < 80 then 'senior'
      else 'oldest_old'
    end as life_stage,
    s.household_status = 'active' and coalesce(h.active_members, 0) = 1 as living_alone,
    f.disability_grade,
    f.disability_category,
    coalesce(f.disability_certificate_valid, false) as disability_certificate_valid,
    sa.household_id is not null as subsistence_allowance_family,
    coalesce(f.pension, false) as pension,
    coalesce(f.disability_subsidy, false) as disability_subsidy,
    f.elderly_allowance_last_period,
    coalesce(f.pension_insurance, false) as pension_insurance,
    coalesce(f.medical_insurance, false) as medical_insurance,
    coalesce(f.insured, false) as insured,
    coalesce(f.property_count, 0) as property_count
  from statused s
  left join households h on h.household_id = s.household_id
  left join facts f on f.resident_id = s.resident_id
  left join subsistence sa on sa.household_id = s.household_id and s.household_status = 'active'
)
select *,
  concat_ws(',',
    life_stage,
    case when household_status = 'active' and age >= 70 then 'elderly_70' end,
    case when household_status = 'active' and age >= 70 and living_alone then 'elderly_living_alone' end,
    case when household_status = 'active' and disability_certificate_valid then 'disabled_grade_' || cast(disability_grade as varchar) end,
    case when subsistence_allowance_family then 'subsistence_allowance_family' end,
    case when pension then 'pension' end,
    case when disability_subsidy then 'disability_subsidy' end,
    case when elderly_allowance_last_period is not null and household_status = 'active' then 'elderly_allowance' end,
    case when insured then 'insured' end,
    case when property_count > 0 then 'property_owner' end
  ) as tags
from profiled
