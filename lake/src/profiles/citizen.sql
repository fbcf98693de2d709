-- profiles.citizen: one row per resident ID, joined across departments.
-- {as_of} is the day the profile describes (ages, benefits "currently" received).
-- Identifiers flagged by ingest (`_flags` names the field) never create or join a profile.
with
hr as (
  select * from ps.household_registration
),
births as (
  select child_id as resident_id, child_name as name, gender, birth_date, mother_id
  from nhc.birth_certificate
  where child_id is not null and coalesce(_flags, '') not like '%child_id%'
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
people as (
  select resident_id from hr
  union
  select resident_id from births where resident_id not in (select resident_id from hr)
),
base as (
  select
    p.resident_id,
    coalesce(hr.name, b.name) as name,
    coalesce(hr.gender, b.gender) as gender,
    coalesce(hr.birth_date, b.birth_date) as birth_date,
    coalesce(hr.household_id, mh.household_id) as household_id,
    hr.relation_to_head,
    coalesce(hr.street, mh.street) as street,
    coalesce(hr.community, mh.community) as community,
    coalesce(hr.address, mh.address) as address,
    hr.resident_id is not null as ps_registered,
    hr.registered_on,
    hr.moved_out_on as ps_moved_out_on,
    hr.moved_out_to,
    hr.status as ps_status,
    coalesce(d.date_of_death, hr.deceased_on, c.date_of_death) as died_on,
    hr.deceased_on is not null or hr.status = 'deceased' as death_registered_by_ps
  from people p
  left join hr on hr.resident_id = p.resident_id
  left join births b on b.resident_id = p.resident_id
  left join ps.household_registration mh on mh.resident_id = b.mother_id
  left join deaths d on d.resident_id = p.resident_id
  left join cremations c on c.resident_id = p.resident_id
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
  select household_id, count(*) as active_members
  from statused where household_status = 'active' and household_id is not null
  group by household_id
),
disability as (
  select resident_id, disability_grade, disability_category, status
  from (
    select resident_id, disability_grade, disability_category, status,
      row_number() over (partition by resident_id order by issued_on desc, certificate_no desc) as rn
    from mca.disability_certificate
    where coalesce(_flags, '') not like '%resident_id%' and issued_on <= {as_of}
  ) where rn = 1
),
subsistence as (
  select distinct household_id from mca.subsistence_allowance
  where status = 'active' and start_date <= {as_of}
    and (end_date is null or end_date > {as_of})
),
pension as (
  select distinct resident_id from hrss.pension
  where status = 'active' and start_date <= {as_of}
),
disability_subsidy as (
  select distinct resident_id from mca.disability_subsidy
  where status = 'active' and coalesce(_flags, '') not like '%resident_id%'
),
elderly_allowance as (
  select resident_id, max(period) as last_paid_period from mca.elderly_allowance_payment
  where status = 'paid' and coalesce(_flags, '') not like '%resident_id%'
    and paid_on <= {as_of}
  group by resident_id
),
insured as (
  select resident_id, string_agg(insurance_type, ',' order by insurance_type) as insurance_types
  from hrss.social_insurance_enrolment
  where status = 'active' and coalesce(_flags, '') not like '%resident_id%'
  group by resident_id
),
properties as (
  select owner_id as resident_id, count(*) as property_count
  from nre.property_certificate
  where status = 'active' and registered_on <= {as_of}
  group by owner_id
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
    d.disability_grade,
    d.disability_category,
    coalesce(d.status = 'valid', false) as disability_certificate_valid,
    sa.household_id is not null as subsistence_allowance_family,
    pe.resident_id is not null as pension,
    ds.resident_id is not null as disability_subsidy,
    ea.last_paid_period as elderly_allowance_last_period,
    ins.insurance_types,
    ins.resident_id is not null as insured,
    coalesce(pr.property_count, 0) as property_count
  from statused s
  left join households h on h.household_id = s.household_id
  left join disability d on d.resident_id = s.resident_id
  left join subsistence sa on sa.household_id = s.household_id and s.household_status = 'active'
  left join pension pe on pe.resident_id = s.resident_id
  left join disability_subsidy ds on ds.resident_id = s.resident_id
  left join elderly_allowance ea on ea.resident_id = s.resident_id
  left join insured ins on ins.resident_id = s.resident_id
  left join properties pr on pr.resident_id = s.resident_id
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
