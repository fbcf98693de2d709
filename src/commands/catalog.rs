//! `gdx catalog list|show|validate`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use gdx_catalog::validate::{validate, validate_evolution};
use gdx_catalog::{Catalog, CategoryTree, Dataset, Report, district};

use crate::cli::{CatalogCommand, CatalogSource, Format};

pub(crate) fn run(cmd: CatalogCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CatalogCommand::List { source, format } => {
            let catalog = load(&source)?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &catalog.datasets().map(summary_json).collect::<Vec<_>>()
                    )?
                ),
                Format::Table => print_list(&catalog),
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Show { id, source, format } => {
            let catalog = load(&source)?;
            let Some(ds) = catalog.get(&id) else {
                let close = catalog.close_ids(&id);
                let hint = if close.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean: {}", close.join(", "))
                };
                anyhow::bail!("no dataset {id:?} in the catalog{hint} (see `gdx catalog list`)");
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(ds)?),
                Format::Table => print_dataset(ds),
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Validate {
            dir,
            baseline,
            warnings,
        } => {
            let (catalog, parse_findings, label) = match &dir {
                Some(d) => {
                    let (c, f) = Catalog::read_dir(d)?;
                    (c, f, d.display().to_string())
                }
                None => (
                    district::catalog(),
                    Vec::new(),
                    "built-in district catalog".to_owned(),
                ),
            };
            let mut report = Report {
                findings: parse_findings,
            };
            report.extend(validate(&catalog).findings);
            if let Some(b) = &baseline {
                let (base, base_findings) = Catalog::read_dir(b)
                    .with_context(|| format!("reading baseline {}", b.display()))?;
                if !base_findings.is_empty() {
                    anyhow::bail!(
                        "baseline {} does not parse: {}",
                        b.display(),
                        base_findings[0]
                    );
                }
                report.extend(validate_evolution(&base, &catalog).findings);
            }
            for f in report.violations() {
                println!("{f}");
            }
            if warnings {
                for f in report.warnings() {
                    println!("{f}");
                }
            }
            let v = report.violations().count();
            let w = report.warnings().count();
            println!(
                "{label}: {} datasets, {v} violations, {w} warnings",
                catalog.len()
            );
            Ok(if v == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn load(source: &CatalogSource) -> anyhow::Result<Catalog> {
    match &source.catalog {
        Some(dir) => load_dir(dir),
        None => Ok(district::catalog()),
    }
}

pub(crate) fn load_dir(dir: &Path) -> anyhow::Result<Catalog> {
    Catalog::load_dir(dir).with_context(|| format!("loading catalog {}", dir.display()))
}

fn summary_json(ds: &Dataset) -> serde_json::Value {
    serde_json::json!({
        "id": ds.id,
        "name": ds.name,
        "department": ds.provider.name,
        "level": ds.level().get(),
        "sharing": ds.sharing.as_ref().map(|s| s.kind),
        "open": ds.open.as_ref().map(|o| o.kind),
        "feed_format": ds.feed_format,
        "fields": ds.fields.len(),
    })
}

/// Pads to a display width, counting CJK characters as two columns.
fn pad(s: &str, width: usize) -> String {
    let w: usize = s
        .chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

fn print_list(catalog: &Catalog) {
    println!(
        "{}{}{}LEVEL  SHARING        OPEN         FEED           FIELDS",
        pad("ID", 34),
        pad("NAME", 30),
        pad("PROVIDER", 26)
    );
    for ds in catalog.datasets() {
        let sharing = ds
            .sharing
            .as_ref()
            .map(|s| format!("{:?}", s.kind).to_lowercase())
            .unwrap_or_default();
        let open = ds
            .open
            .as_ref()
            .map(|o| format!("{:?}", o.kind).to_lowercase())
            .unwrap_or_default();
        let feed = match ds.feed_format {
            gdx_catalog::FeedFormat::Json => "json",
            gdx_catalog::FeedFormat::DebeziumJson => "debezium-json",
        };
        let provider: String = ds.provider.name.chars().take(12).collect();
        println!(
            "{}{}{}{:<7}{:<15}{:<13}{:<15}{}",
            pad(ds.id.as_str(), 34),
            pad(&ds.name, 30),
            pad(&provider, 26),
            ds.level(),
            sharing,
            open,
            feed,
            ds.fields.len()
        );
    }
    println!("{} datasets", catalog.len());
}

fn print_dataset(ds: &Dataset) {
    let tree = CategoryTree::builtin();
    println!("{} — {}", ds.id, ds.name);
    println!("  resource code   {}", ds.resource_code);
    println!(
        "  provider        {} ({}, code {})",
        ds.provider.name, ds.provider.department, ds.provider.code
    );
    println!("  summary         {}", ds.summary);
    println!("  format          {}", ds.format);
    if let Some(s) = &ds.sharing {
        println!(
            "  sharing         {:?} via {}{}",
            s.kind,
            s.method,
            if s.condition.is_empty() {
                String::new()
            } else {
                format!(" — {}", s.condition)
            }
        );
        if !s.legal_basis.is_empty() {
            println!("  legal basis     {}", s.legal_basis);
        }
    }
    if let Some(o) = &ds.open {
        println!(
            "  open            {:?}{}",
            o.kind,
            if o.condition.is_empty() {
                String::new()
            } else {
                format!(" — {}", o.condition)
            }
        );
    }
    println!("  update cycle    {}", ds.update_cycle);
    println!(
        "  published       {}",
        ds.publish_date.map(|d| d.to_string()).unwrap_or_default()
    );
    println!("  related         {}", ds.related.join(", "));
    println!("  level           {} (max of its fields)", ds.level());
    println!(
        "  topic           {} ({})",
        ds.topic,
        match ds.feed_format {
            gdx_catalog::FeedFormat::Json => "json",
            gdx_catalog::FeedFormat::DebeziumJson => "debezium-json",
        }
    );
    println!("  primary key     {}", ds.primary_key.join(", "));
    let entities: Vec<String> = ds
        .entities
        .iter()
        .map(|e| format!("{} → {:?}", e.field, e.kind))
        .collect();
    println!("  entities        {}", entities.join(", "));
    println!("  schema version  {}", ds.schema_version);
    println!();
    println!(
        "  {}{}{}{}{}{}DESCRIPTION",
        pad("FIELD", 22),
        pad("TYPE", 10),
        pad("NULL", 6),
        pad("LEVEL", 7),
        pad("PII/CHECK", 22),
        pad("CATEGORY", 30)
    );
    for f in &ds.fields {
        let pii = match (f.pii, f.check) {
            (Some(p), Some(c)) => format!("{}/{:?}", p.as_str(), c).to_lowercase(),
            (Some(p), None) => p.as_str().to_owned(),
            _ => String::new(),
        };
        let cat = f
            .category
            .as_deref()
            .map(|c| {
                format!(
                    "{c} {}",
                    tree.get(c).map(|n| n.name.as_str()).unwrap_or("?")
                )
            })
            .unwrap_or_default();
        println!(
            "  {}{}{}{}{}{}{}",
            pad(&f.name, 22),
            pad(f.ty.as_str(), 10),
            pad(if f.nullable { "yes" } else { "no" }, 6),
            pad(
                &f.level.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                7
            ),
            pad(&pii, 22),
            pad(&cat, 30),
            f.description
        );
    }
}
