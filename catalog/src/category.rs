//! The 3-level data category tree (personal / organization / other → second level → third
//! level), shipped as `catalog/data/categories.toml` and compiled in.
//!
//! Data flow: the data file → [`CategoryTree::builtin`] → validation checks that every
//! field's category is a third-level code of the tree.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A category code such as `1.1.01`.
pub type CategoryCode = String;

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub code: CategoryCode,
    pub name: String,
    pub english: String,
}

impl Category {
    /// 1, 2 or 3.
    pub fn depth(&self) -> usize {
        self.code.split('.').count()
    }
}

/// The whole tree, keyed by code.
#[derive(Debug, Clone)]
pub struct CategoryTree {
    nodes: BTreeMap<CategoryCode, Category>,
}

#[derive(Deserialize)]
struct File {
    categories: Vec<[String; 3]>,
}

/// The tree file is malformed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("category tree is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("category {0} has no parent in the tree")]
    Orphan(String),
    #[error("category {0} appears twice")]
    Duplicate(String),
}

const BUILTIN: &str = include_str!("../data/categories.toml");

impl CategoryTree {
    /// The tree compiled into gdx.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN).expect("the built-in category tree is checked by tests")
    }

    pub fn parse(text: &str) -> Result<Self, TreeError> {
        let file: File = toml::from_str(text)?;
        let mut nodes = BTreeMap::new();
        for [code, name, english] in file.categories {
            if let Some((parent, _)) = code.rsplit_once('.')
                && !nodes.contains_key(parent)
            {
                return Err(TreeError::Orphan(code));
            }
            let node = Category {
                code: code.clone(),
                name,
                english,
            };
            if nodes.insert(code.clone(), node).is_some() {
                return Err(TreeError::Duplicate(code));
            }
        }
        Ok(Self { nodes })
    }

    pub fn get(&self, code: &str) -> Option<&Category> {
        self.nodes.get(code)
    }

    /// A code fields may use: a leaf at the third level.
    pub fn is_leaf(&self, code: &str) -> bool {
        self.get(code).is_some_and(|c| c.depth() == 3)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Category> {
        self.nodes.values()
    }

    /// The path from the top, e.g. `个人信息 / 个人基本信息 / 身份标识`.
    pub fn path(&self, code: &str) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = Some(code);
        while let Some(c) = cur {
            parts.push(self.get(c)?.name.as_str());
            cur = c.rsplit_once('.').map(|(p, _)| p);
        }
        parts.reverse();
        Some(parts.join(" / "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tree_is_3_7_and_about_52() {
        let t = CategoryTree::builtin();
        let count = |d| t.iter().filter(|c| c.depth() == d).count();
        assert_eq!(count(1), 3);
        assert_eq!(count(2), 7);
        assert!((50..=56).contains(&count(3)), "{}", count(3));
        assert!(t.is_leaf("1.1.01"));
        assert!(!t.is_leaf("1.1"));
        assert!(!t.is_leaf("9.9.99"));
        assert_eq!(
            t.path("1.1.01").unwrap(),
            "个人信息 / 个人基本信息 / 身份标识"
        );
    }

    #[test]
    fn malformed_trees_are_rejected() {
        assert!(matches!(
            CategoryTree::parse("categories = [[\"1.1\", \"a\", \"b\"]]"),
            Err(TreeError::Orphan(_))
        ));
        assert!(matches!(
            CategoryTree::parse("categories = [[\"1\", \"a\", \"b\"], [\"1\", \"a\", \"b\"]]"),
            Err(TreeError::Duplicate(_))
        ));
    }
}
