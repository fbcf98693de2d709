//! Loading catalog files.
//!
//! Data flow: a directory of `*.toml` files (one dataset per file) or in-memory sources →
//! TOML parse → [`Dataset`] entries that remember their file → [`Catalog`]. Files that do
//! not parse become [`Finding`]s (with the file name and the parser's line/column) so that
//! validation can report every problem of a catalog in one pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::finding::{Finding, Severity};
use crate::model::{Dataset, DatasetId};

/// Reading a catalog failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read catalog directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read catalog file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("catalog directory {0} holds no .toml dataset files")]
    Empty(PathBuf),
    #[error("catalog has errors:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Finding>),
}

/// A loaded set of datasets, ordered by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    datasets: BTreeMap<DatasetId, Dataset>,
    /// Entries whose id appeared in more than one file (kept for validation to report).
    duplicates: Vec<Dataset>,
}

impl Catalog {
    /// Parses `(file name, TOML text)` pairs. Parse failures are returned as findings.
    pub fn parse_sources<I, N, T>(sources: I) -> (Catalog, Vec<Finding>)
    where
        I: IntoIterator<Item = (N, T)>,
        N: Into<String>,
        T: AsRef<str>,
    {
        let mut catalog = Catalog::default();
        let mut findings = Vec::new();
        for (name, text) in sources {
            let name = name.into();
            match toml::from_str::<Dataset>(text.as_ref()) {
                Ok(mut ds) => {
                    ds.source = name;
                    catalog.insert(ds);
                }
                Err(e) => findings.push(Finding {
                    severity: Severity::Violation,
                    rule: "parse",
                    file: name,
                    dataset: None,
                    field: None,
                    message: e.to_string().trim_end().replace('\n', " | "),
                }),
            }
        }
        (catalog, findings)
    }

    /// Reads every `*.toml` file of `dir` (sorted by name); parse failures become findings.
    pub fn read_dir(dir: &Path) -> Result<(Catalog, Vec<Finding>), LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|source| LoadError::ReadDir {
            path: dir.to_owned(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::ReadDir {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(LoadError::Empty(dir.to_owned()));
        }
        files.sort();
        let mut sources = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| LoadError::ReadFile {
                path: path.clone(),
                source,
            })?;
            sources.push((path.display().to_string(), text));
        }
        Ok(Self::parse_sources(sources))
    }

    fn insert(&mut self, ds: Dataset) {
        if self.datasets.contains_key(&ds.id) {
            self.duplicates.push(ds);
        } else {
            self.datasets.insert(ds.id.clone(), ds);
        }
    }

    pub fn get(&self, id: &str) -> Option<&Dataset> {
        self.datasets
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, v)| v)
    }

    /// The dataset fed by a Kafka topic.
    pub fn by_topic(&self, topic: &str) -> Option<&Dataset> {
        self.datasets.values().find(|d| d.topic == topic)
    }

    pub fn datasets(&self) -> impl Iterator<Item = &Dataset> {
        self.datasets.values()
    }

    pub fn len(&self) -> usize {
        self.datasets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datasets.is_empty()
    }

    pub(crate) fn duplicates(&self) -> &[Dataset] {
        &self.duplicates
    }

    /// Ids that are close to `id` (same department, or a shared word), for "did you mean".
    pub fn close_ids(&self, id: &str) -> Vec<&str> {
        let words: Vec<&str> = id.split(['.', '_']).filter(|w| w.len() > 2).collect();
        self.datasets
            .keys()
            .map(DatasetId::as_str)
            .filter(|k| words.iter().any(|w| k.contains(w)))
            .collect()
    }
}
