//! A caller's view of the lake: its department's own data and its active grants, as the
//! lake's [`TablePolicy`].
//!
//! Data flow: the caller's principal + the current [`AccessState`] (principals, grants,
//! casbin) at the moment of the call → per resource the best active grant (raw, masked,
//! aggregate, verify; own department: raw for its systems) → [`CallerPolicy::access`]
//! answers the lake per table: the resource's `current` table with the grant's fields, masks
//! and row scope; events and deleted keys only to the owner department; the catalog to
//! everyone; the audit to auditors; anything else hidden → every read path (rows, profiles,
//! SQL) opens its `LakeSession` with this policy, so they all see the same thing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, cast, lit};
use gdx_catalog::Level;
use gdx_lake::TablePolicy;
use gdx_lake::policy::{
    Access, ColumnRule, DEFAULT_MIN_GROUP, ReadMode, TableAccess, TableInfo, TableKind,
};

use crate::authz::Action;
use crate::model::{GrantId, ProcessingLevel, Role};
use crate::principals::Principal;
use crate::store::AccessState;

/// How the caller may read one resource, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceAccess {
    pub level: ProcessingLevel,
    /// Fields granted; `None`: all.
    pub fields: Option<Vec<String>>,
    /// Row scope: field → allowed values.
    pub rows: BTreeMap<String, Vec<String>>,
    /// The grant that allows it; `None` for the caller's own department's data.
    pub grant: Option<GrantId>,
}

/// What one caller may read, decided once per call.
#[derive(Debug, Clone)]
pub struct CallerPolicy {
    principal: String,
    resources: BTreeMap<String, ResourceAccess>,
    own_department: String,
    own_events: bool,
    audit: bool,
    /// Point lookups the exchange itself asks for (a profile by its subject): resource →
    /// (column, stored value), added to the row filter.
    lookups: BTreeMap<String, (String, String)>,
    /// Carry each row's stored subject for the audit (the exchange's own SQL only).
    tap: bool,
}

impl CallerPolicy {
    /// The policy of `who` at `now`: worked out once per state and principal (a dozen or
    /// more casbin decisions), then reused until the state changes or its earliest grant
    /// expires.
    pub fn of(state: &AccessState, who: &Principal, now: DateTime<Utc>) -> Self {
        let reusable = state.next_expiry.is_none_or(|e| now < e);
        if reusable
            && let Some(p) = state
                .policies
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(who.id.as_str())
        {
            return p.clone();
        }
        let p = Self::work_out(state, who, now);
        if reusable {
            state
                .policies
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(who.id.to_string(), p.clone());
        }
        p
    }

    fn work_out(state: &AccessState, who: &Principal, now: DateTime<Utc>) -> Self {
        let mut resources: BTreeMap<String, ResourceAccess> = BTreeMap::new();
        for r in state.resources.iter() {
            if r.owner == who.department.as_str() {
                let level = [
                    ProcessingLevel::Raw,
                    ProcessingLevel::Masked,
                    ProcessingLevel::Aggregate,
                ]
                .into_iter()
                .find(|&level| {
                    state.authz.allows(
                        &who.id,
                        &who.department,
                        &Action::Read {
                            resource: &r.name,
                            owner: &r.owner,
                            level,
                        },
                    )
                });
                if let Some(level) = level {
                    resources.insert(
                        r.name.clone(),
                        ResourceAccess {
                            level,
                            fields: None,
                            rows: BTreeMap::new(),
                            grant: None,
                        },
                    );
                }
            }
        }
        for g in state.grants.active_for(&who.id, now) {
            let Some(r) = state.resources.get(&g.request.resource) else {
                continue;
            };
            // casbin has the last word (its lines follow the grants; a grant that expired
            // since the enforcer was built is already excluded by `active_for`).
            let action = match g.request.level {
                ProcessingLevel::Verify => Action::Verify {
                    resource: &r.name,
                    owner: &r.owner,
                },
                level => Action::Read {
                    resource: &r.name,
                    owner: &r.owner,
                    level,
                },
            };
            if !state.authz.allows(&who.id, &who.department, &action) {
                continue;
            }
            let candidate = ResourceAccess {
                level: g.request.level,
                fields: g.request.fields.clone(),
                rows: g.request.rows.clone(),
                grant: Some(g.id.clone()),
            };
            match resources.get(&r.name) {
                Some(have) if have.level <= candidate.level => {}
                _ => {
                    resources.insert(r.name.clone(), candidate);
                }
            }
        }
        let audit = state
            .authz
            .allows(&who.id, &who.department, &Action::ReadAudit);
        Self {
            principal: who.id.to_string(),
            resources,
            own_department: who.department.to_string(),
            own_events: who.role == Role::DepartmentSystem,
            audit,
            lookups: BTreeMap::new(),
            tap: false,
        }
    }

    /// This policy for a session whose SQL the exchange writes: each row also carries its
    /// subject as stored (column [`gdx_lake::policy::SUBJECT_TAP`]), so the audit records
    /// whom an answer was about even when the caller sees the subject masked.
    pub fn with_subject_tap(mut self) -> Self {
        self.tap = true;
        self
    }

    /// This policy, further limited to the rows of `resource` whose `column` holds `value`
    /// as stored (a lookup by key the caller names, e.g. a profile by resident ID: its
    /// grant may show the ID masked, but the lookup is by the value itself).
    pub fn with_lookup(mut self, resource: &str, column: &str, value: &str) -> Self {
        self.lookups
            .insert(resource.to_owned(), (column.to_owned(), value.to_owned()));
        self
    }

    /// How the caller may read `resource`, if at all.
    pub fn resource(&self, resource: &str) -> Option<&ResourceAccess> {
        self.resources.get(resource)
    }

    /// The grants this policy applies.
    pub fn grant_ids(&self) -> Vec<String> {
        self.resources
            .values()
            .filter_map(|a| a.grant.as_ref().map(|g| g.to_string()))
            .collect()
    }

    /// The grants that showed `tables` (`schema.table`; an event or deletion table counts
    /// as its dataset): what the audit records of a query.
    pub fn grants_for(&self, tables: &[String]) -> Vec<String> {
        tables
            .iter()
            .filter_map(|t| {
                let resource = t
                    .strip_suffix("_events")
                    .or_else(|| t.strip_suffix("_deleted"))
                    .unwrap_or(t);
                self.resource(resource)?
                    .grant
                    .as_ref()
                    .map(|g| g.to_string())
            })
            .collect()
    }

    pub fn into_arc(self) -> Arc<dyn TablePolicy> {
        Arc::new(self)
    }
}

/// Column `name` of `table` as text: itself when stored as text (so that a scan can prune
/// files and row groups by it), else cast.
fn as_text(table: &TableInfo, name: &str) -> Expr {
    let c = Expr::Column(Column::new_unqualified(name));
    match table.column(name).map(|c| &c.data_type) {
        Some(DataType::Utf8) => c,
        _ => cast(c, DataType::Utf8),
    }
}

/// The rows of `scope` as a predicate over stored values.
fn row_filter(table: &TableInfo, scope: &BTreeMap<String, Vec<String>>) -> Option<Expr> {
    scope
        .iter()
        .map(|(field, values)| {
            as_text(table, field).in_list(values.iter().map(|v| lit(v.clone())).collect(), false)
        })
        .reduce(Expr::and)
}

/// The table's columns a grant with `fields` may see: the fields, and the public
/// provenance columns (`_event_time`, `_op`, …; not `_key`, which repeats the key's values).
fn column_allowed(table: &TableInfo, fields: &Option<Vec<String>>, column: &str) -> bool {
    match fields {
        None => true,
        Some(fs) => {
            fs.iter().any(|f| f == column)
                || (column.starts_with('_')
                    && column != "_key"
                    && table
                        .column(column)
                        .is_some_and(|c| c.grade.level <= Level::LOW))
        }
    }
}

impl TablePolicy for CallerPolicy {
    fn access(&self, table: &TableInfo) -> Access {
        let resource = match (&table.dataset, table.kind) {
            (_, TableKind::System) if table.name.starts_with("catalog.") => {
                return Access::Read(TableAccess::raw(table));
            }
            (_, TableKind::System) if table.name == "system.audit" && self.audit => {
                return Access::Read(TableAccess::raw(table));
            }
            (_, TableKind::System) => return Access::Hidden,
            (Some(ds), TableKind::Events | TableKind::Deleted) => {
                return if self.own_events && ds.department() == self.own_department {
                    Access::Read(TableAccess::raw(table))
                } else {
                    Access::Hidden
                };
            }
            (Some(ds), TableKind::Current) => ds.as_str().to_owned(),
            (None, TableKind::Profile | TableKind::Review) => table.name.clone(),
            _ => return Access::Hidden,
        };
        let Some(a) = self.resources.get(&resource) else {
            return Access::Hidden;
        };
        let base = match a.level {
            ProcessingLevel::Verify => return Access::VerifyOnly,
            ProcessingLevel::Raw | ProcessingLevel::Aggregate => TableAccess::raw(table),
            ProcessingLevel::Masked => TableAccess::masked(table),
        };
        let columns = base
            .columns
            .into_iter()
            .map(|(c, rule)| {
                let rule = if column_allowed(table, &a.fields, &c) {
                    rule
                } else {
                    ColumnRule::Remove
                };
                (c, rule)
            })
            .collect();
        let lookup = self
            .lookups
            .get(&resource)
            .map(|(c, v)| as_text(table, c).eq(lit(v.clone())));
        let rows = match (row_filter(table, &a.rows), lookup) {
            (Some(r), Some(l)) => Some(r.and(l)),
            (r, l) => r.or(l),
        };
        Access::Read(TableAccess {
            columns,
            rows,
            mode: if a.level == ProcessingLevel::Aggregate {
                ReadMode::Aggregate {
                    k: DEFAULT_MIN_GROUP,
                }
            } else {
                ReadMode::Rows
            },
            tap_subject: self.tap,
            // The exchange writes these sessions' SQL and shows no plan.
            push_rows: self.tap || !self.lookups.is_empty(),
        })
    }

    fn label(&self) -> String {
        format!("exchange caller {}", self.principal)
    }
}
