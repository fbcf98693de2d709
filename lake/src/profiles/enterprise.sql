-- profiles.enterprise: one row per unified social credit code (USCC).
-- {as_of} is the day the profile describes. Size classes follow the statistical standard's
-- thresholds on insured headcount and revenue (large ≥ 1000 staff and ≥ 400 M yuan,
-- medium ≥ 300 and ≥ 20 M, small ≥ 20 and ≥ 3 M, otherwise micro), with revenue of the
-- district's last tax year (no filing that year counts as no revenue).
with
reg as (
  select * from amr.enterprise_registration
),
headcount as (
  select h.uscc, h.insured_headcount, h.month as headcount_month
  from hrss.employer_headcount h
  join (select uscc, max(month) as month from hrss.employer_headcount group by uscc) l
    on l.uscc = h.uscc and l.month = h.month
),
tax_years as (
  select uscc,
    max(year) as last_tax_year,
    -- "year:amount" pairs in year order (sorting the strings sorts the four-digit years)
    array_to_string(array_sort(array_agg(cast(year as varchar) || ':' || cast(tax_paid as varchar))), ',') as tax_paid_by_year
  from tax.tax_paid group by uscc
),
last_tax as (
  select t.uscc, t.revenue, t.tax_paid from tax.tax_paid t
  where t.year = (select max(year) from tax.tax_paid)
),
credit as (
  select c.uscc, c.grade as credit_grade, c.year as credit_year
  from tax.taxpayer_credit c
  join (select uscc, max(year) as year from tax.taxpayer_credit group by uscc) l
    on l.uscc = c.uscc and l.year = c.year
),
high_tech as (
  select uscc,
    max(recognised_on) as high_tech_recognised_on,
    max(case when status = 'valid' and (valid_until is null or valid_until >= {as_of}) then valid_until end) as high_tech_valid_until
  from sti.high_tech_enterprise
  where recognised_on <= {as_of}
  group by uscc
),
sme as (
  select uscc, level as specialised_sme_level, recognised_on as specialised_sme_recognised_on from (
    select uscc, level, recognised_on,
      row_number() over (partition by uscc order by case level when 'national' then 3 when 'province' then 2 else 1 end desc, recognised_on desc) as rn
    from miit.specialised_sme where recognised_on <= {as_of}
  ) where rn = 1
),
above_scale as (
  select uscc, min(first_included_year) as above_scale_first_year, max(year) as above_scale_last_year
  from stats.above_scale_enterprise group by uscc
),
abnormal as (
  select uscc, max(listed_on) as abnormal_listed_on
  from amr.abnormal_operation
  where listed_on <= {as_of} and (removed_on is null or removed_on > {as_of})
  group by uscc
),
-- Rewards paid (云兑现): the bank's results the ledger recorded as paid (as of a past day, the
-- session's ledger holds only what was recorded by then).
rewards as (
  select uscc,
    sum(amount) as rewards_received,
    array_to_string(array_sort(array_agg(policy || ':' || cast(amount as varchar))), ',') as rewards_by_policy
  from {rewards_ledger}
  where kind = 'bank_result' and reason = 'paid'
  group by uscc
),
-- Every per-enterprise fact of the other departments, joined onto the bare key list first
-- (cheap, narrow rows) and onto the wide registration rows once.
facts as (
  select k.uscc,
    h.insured_headcount, h.headcount_month,
    ty.last_tax_year, ty.tax_paid_by_year,
    lt.revenue, lt.tax_paid,
    c.credit_grade, c.credit_year,
    ht.high_tech_recognised_on, ht.high_tech_valid_until,
    s.specialised_sme_level, s.specialised_sme_recognised_on,
    a.above_scale_first_year, a.above_scale_last_year,
    ab.abnormal_listed_on,
    rw.rewards_received, rw.rewards_by_policy
  from (select uscc from reg) k
  left join headcount h on h.uscc = k.uscc
  left join tax_years ty on ty.uscc = k.uscc
  left join last_tax lt on lt.uscc = k.uscc
  left join credit c on c.uscc = k.uscc
  left join high_tech ht on ht.uscc = k.uscc
  left join sme s on s.uscc = k.uscc
  left join above_scale a on a.uscc = k.uscc
  left join abnormal ab on ab.uscc = k.uscc
  left join rewards rw on rw.uscc = k.uscc
),
profiled as (
  select
    r.uscc,
    r.name,
    r.enterprise_type,
    r.industry_code,
    r.registered_capital,
    r.established_on,
    r.street,
    case when r.status = 'cancelled' or (r.cancelled_on is not null and r.cancelled_on <= {as_of})
         then 'cancelled' else 'active' end as status,
    r.cancelled_on,
    cast(date_part('year', {as_of}) - date_part('year', r.established_on)
      - case when date_part('month', {as_of}) * 100 + date_part('day', {as_of})
                < date_part('month', r.established_on) * 100 + date_part('day', r.established_on)
             then 1 else 0 end as int) as age_years,
    coalesce(f.insured_headcount, 0) as insured_headcount,
    f.headcount_month,
    coalesce(f.revenue, 0) as last_year_revenue,
    f.last_tax_year,
    coalesce(f.tax_paid, 0) as last_year_tax_paid,
    f.tax_paid_by_year,
    case
      when coalesce(f.insured_headcount, 0) >= 1000 and coalesce(f.revenue, 0) >= 400000000 then 'large'
      when coalesce(f.insured_headcount, 0) >= 300 and coalesce(f.revenue, 0) >= 20000000 then 'medium'
      when coalesce(f.insured_headcount, 0) >= 20 and coalesce(f.revenue, 0) >= 3000000 then 'small'
      else 'micro'
    end as size_class,
    f.high_tech_recognised_on,
    f.high_tech_valid_until,
    f.specialised_sme_level,
    f.specialised_sme_recognised_on,
    f.above_scale_first_year,
    f.above_scale_last_year,
    f.abnormal_listed_on,
    f.abnormal_listed_on is not null as abnormal_operation,
    f.credit_grade,
    f.credit_year,
    coalesce(f.credit_grade = 'D', false) as credit_bad,
    coalesce(f.rewards_received, 0) as rewards_received,
    f.rewards_by_policy
  from reg r
  left join facts f on f.uscc = r.uscc
)
select *,
  concat_ws(',',
    size_class,
    case when age_years < 3 then 'startup' end,
    case when high_tech_valid_until is not null then 'high_tech' end,
    case when specialised_sme_level is not null then 'specialised_sme_' || specialised_sme_level end,
    case when above_scale_last_year is not null then 'above_scale' end,
    case when abnormal_operation then 'abnormal_operation' end,
    case when credit_bad then 'credit_d' end
  ) as tags
from profiled
