//! `gdx sql`: the analyst's read-only SQL over the lake.
//!
//! Data flow: lake + catalog → the [`TableRegistry`] → the policy: the operator's explicit
//! allow-all, or a reader's `--policy FILE` (checked against every table first) →
//! [`LakeSession`] (schemas per department, profiles, dead letters, catalog tables; as of a
//! date when asked) → one statement, or the prompt ([`super::prompt`]: line editing, history,
//! multi-line statements, `\d`, Ctrl-C cancels) → rows
//! (capped) printed as a table or written as CSV, JSON lines or Parquet.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use arrow::array::RecordBatch;
use std::sync::Arc;

use gdx_lake::policy::file::FilePolicy;
use gdx_lake::sql::{LakeSession, QueryOutput, SessionOptions};
use gdx_lake::{AllowAll, TablePolicy, TableRegistry};

use super::ingest::runtime;
use super::load_catalog;
use crate::cli::{SqlArgs, SqlFormat};

pub(crate) fn run(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(&args.lake.source)?;
    let lake = super::open_lake(&args.lake.lake)?;
    if args.format == SqlFormat::Parquet && args.out.is_none() {
        anyhow::bail!("--format parquet needs --out FILE");
    }
    let rt = runtime()?;
    let opts = SessionOptions {
        as_of: args.as_of,
        memory_limit: args.lake.memory_mb.max(64) << 20,
        max_rows: args.max_rows.max(1),
        timeout: (args.timeout_secs > 0).then(|| std::time::Duration::from_secs(args.timeout_secs)),
    };
    let registry = rt.block_on(TableRegistry::open(&lake, &catalog))?;
    let policy = policy(&args, &registry)?;
    let session = rt.block_on(LakeSession::open(&registry, policy, &opts))?;
    if let Some(q) = &args.query {
        return Ok(match rt.block_on(session.query(q)) {
            Ok(out) => {
                write(&out, &args)?;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        });
    }
    // The prompt: statements end with `;`; `\q` or end of input leaves.
    let history = super::prompt::history_path(&args.history);
    let print = |out: &QueryOutput| write(out, &args);
    super::prompt::Prompt::new(&session, &rt, &print).run(history.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The operator's allow-all, or the reader's policy of `--policy FILE`.
fn policy(args: &SqlArgs, registry: &TableRegistry) -> anyhow::Result<Arc<dyn TablePolicy>> {
    let pseudonyms = super::pseudonym_key(args.pseudonym_key_file.as_deref())?.map(Arc::new);
    let Some(path) = &args.policy else {
        return Ok(Arc::new(AllowAll));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the policy {}", path.display()))?;
    let policy = FilePolicy::parse(&path.display().to_string(), &text, pseudonyms)?;
    let snapshot = registry.snapshot();
    let tables: Vec<_> = snapshot
        .tables()
        .iter()
        .filter_map(|t| t.opened.as_ref().map(|o| o.info.as_ref().clone()))
        .collect();
    policy.check(&tables)?;
    Ok(Arc::new(policy))
}

fn write(out: &QueryOutput, args: &SqlArgs) -> anyhow::Result<()> {
    let sink: Box<dyn Write + Send> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
    let batches: &[RecordBatch] = &out.batches;
    match args.format {
        SqlFormat::Table => {
            let mut sink = sink;
            let text = arrow::util::pretty::pretty_format_batches_with_schema(
                out.schema.clone(),
                batches,
            )?;
            writeln!(sink, "{text}")?;
        }
        SqlFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(sink);
            for b in batches {
                w.write(b)?;
            }
        }
        SqlFormat::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(sink);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        SqlFormat::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(sink, out.schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    std::io::stdout().flush()?;
    let rows = out.rows();
    if out.truncated {
        eprintln!(
            "({rows} rows shown; the result has more — raise --max-rows or narrow the query)"
        );
    } else {
        eprintln!("({rows} rows)");
    }
    Ok(())
}
