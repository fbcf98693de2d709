//! The `gdx sql` prompt: what psql, duckdb and datafusion-cli users expect.
//!
//! Data flow: lines from a terminal (rustyline: line editing, history kept across sessions
//! in an owner-only file) or from a pipe (plain lines, no echo of prompts on stdout) →
//! [`Prompt::line`] collects a statement until a line ends with `;` (multi-line), or runs a
//! meta-command at the start of one (`\d`, `\dt`, `\d TABLE`, `\?`, `\q`) → the statement
//! runs in the reader's session; Ctrl-C while it runs cancels it (the future is dropped,
//! DataFusion stops) and the prompt stays; Ctrl-C while typing drops the line; Ctrl-D or
//! `\q` leaves.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gdx_lake::sql::{LakeSession, QueryOutput};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

/// What to do after a line.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// A prompt over one session.
pub(crate) struct Prompt<'a> {
    session: &'a LakeSession,
    rt: &'a tokio::runtime::Runtime,
    write: &'a dyn Fn(&QueryOutput) -> anyhow::Result<()>,
    statement: String,
}

const HELP: &str = "statements end with ';' and may span lines
  \\dt, \\d       the tables you may read
  \\d TABLE      its columns and types
  \\?            this help
  \\q            leave (or Ctrl-D); Ctrl-C cancels a running query";

impl<'a> Prompt<'a> {
    pub(crate) fn new(
        session: &'a LakeSession,
        rt: &'a tokio::runtime::Runtime,
        write: &'a dyn Fn(&QueryOutput) -> anyhow::Result<()>,
    ) -> Self {
        Self {
            session,
            rt,
            write,
            statement: String::new(),
        }
    }

    /// Reads from the terminal with line editing and history, or plain lines from a pipe.
    pub(crate) fn run(mut self, history: Option<&Path>) -> anyhow::Result<()> {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return self.interactive(history);
        }
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading the prompt")?;
            if self.line(&line)? == Flow::Quit {
                break;
            }
        }
        Ok(())
    }

    fn interactive(&mut self, history: Option<&Path>) -> anyhow::Result<()> {
        let mut rl = DefaultEditor::new().context("starting the line editor")?;
        if let Some(h) = history {
            // A missing file is the first session.
            let _ = rl.load_history(h);
        }
        eprintln!("gdx sql: statements end with ';'; \\? for help, \\q to leave");
        loop {
            let prompt = if self.statement.is_empty() {
                "gdx> "
            } else {
                "   -> "
            };
            match rl.readline(prompt) {
                Ok(line) => {
                    let typed = format!("{}{line}", self.statement);
                    let flow = self.line(&line)?;
                    // A whole statement (multi-line included) or a meta-command becomes
                    // one history entry.
                    if self.statement.is_empty() && !line.trim().is_empty() {
                        let _ = rl.add_history_entry(typed.trim());
                    }
                    if flow == Flow::Quit {
                        break;
                    }
                }
                Err(ReadlineError::Interrupted) => {
                    // Ctrl-C while typing: drop what was typed.
                    self.statement.clear();
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e).context("reading the prompt"),
            }
        }
        if let Some(h) = history {
            save_history(&mut rl, h)?;
        }
        Ok(())
    }

    /// One line: a meta-command, part of a statement, or the end of one (then it runs).
    fn line(&mut self, line: &str) -> anyhow::Result<Flow> {
        if self.statement.is_empty() {
            let t = line.trim();
            if t.starts_with('\\') {
                return self.meta(t);
            }
            if t.is_empty() {
                return Ok(Flow::Continue);
            }
        }
        self.statement.push_str(line);
        self.statement.push('\n');
        if line.trim_end().ends_with(';') {
            let q = std::mem::take(&mut self.statement);
            self.execute(q.trim().trim_end_matches(';'))?;
        }
        Ok(Flow::Continue)
    }

    fn meta(&mut self, command: &str) -> anyhow::Result<Flow> {
        let mut words = command.split_whitespace();
        match (words.next(), words.next()) {
            (Some("\\q"), _) => return Ok(Flow::Quit),
            (Some("\\?" | "\\h"), _) => eprintln!("{HELP}"),
            (Some("\\d" | "\\dt"), None) => {
                let mut tables = self.session.tables().to_vec();
                tables.sort();
                for t in &tables {
                    println!("{t}");
                }
                eprintln!("({} tables)", tables.len());
            }
            (Some("\\d"), Some(table)) => {
                let (schema, name) = table.split_once('.').unwrap_or(("public", table));
                let text = |s: &str| format!("'{}'", s.replace('\'', "''"));
                self.execute(&format!(
                    "select column_name, data_type, is_nullable from information_schema.columns \
                     where table_schema = {} and table_name = {} order by ordinal_position",
                    text(schema),
                    text(name)
                ))?;
            }
            _ => eprintln!("unknown command {command}; \\? lists them"),
        }
        Ok(Flow::Continue)
    }

    /// Runs one statement; Ctrl-C cancels it.
    fn execute(&self, sql: &str) -> anyhow::Result<()> {
        let ran = self.rt.block_on(async {
            tokio::select! {
                r = self.session.query(sql) => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        match ran {
            Some(Ok(out)) => (self.write)(&out)?,
            Some(Err(e)) => eprintln!("error: {e}"),
            None => eprintln!("query cancelled"),
        }
        Ok(())
    }
}

/// Saves the history readable by its owner only.
fn save_history(rl: &mut DefaultEditor, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    rl.save_history(path)
        .with_context(|| format!("saving the history to {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    Ok(())
}

/// Where the history lives: `--history`, else `~/.gdx_history`.
pub(crate) fn history_path(given: &Option<PathBuf>) -> Option<PathBuf> {
    given
        .clone()
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".gdx_history")))
}
