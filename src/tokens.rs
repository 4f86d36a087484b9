//! OAuth tokens: which tokens exist and the projects each may use. The API checks the token of
//! every request; push delivery checks the token of a subscriber that posts to another project.

use std::collections::{HashMap, HashSet};

/// Why a token may not use a project.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("Missing OAuth token (Authorization: OAuth <token>)")]
    Missing,
    #[error("Invalid OAuth token")]
    Unknown,
    #[error("This token may not use project {0}")]
    OtherProject(String),
}

impl Refused {
    /// The HTTP status that answers it: 401 without a known token, 403 for another project.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Missing | Refused::Unknown => 401,
            Refused::OtherProject(_) => 403,
        }
    }
}

/// The projects one token may use.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    AllProjects,
    Projects(HashSet<String>),
}

/// Tokens and their access, read from `FERROMQ_TOKENS` and/or a tokens file. Kept by SHA-256
/// digest, and a presented token is looked up by its digest: how long a lookup takes depends
/// on digests, which an attacker cannot steer byte by byte, so timing tells nothing about the
/// tokens (and the tokens themselves are not kept in memory).
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<[u8; 32], Access>);

fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Reads entries `TOKEN=PROJECT[,PROJECT...]` or `TOKEN=*`, separated by whitespace, `;`
    /// or new lines; `#` starts a comment. A token listed twice gets the union of its projects.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = Tokens::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for entry in line.split(|c: char| c == ';' || c.is_whitespace()) {
                if entry.is_empty() {
                    continue;
                }
                let (token, projects) = entry
                    .split_once('=')
                    .ok_or_else(|| format!("token entry {entry:?} is not TOKEN=PROJECTS"))?;
                if token.is_empty() || projects.is_empty() {
                    return Err(format!("token entry {entry:?} is not TOKEN=PROJECTS"));
                }
                let access = if projects == "*" {
                    Access::AllProjects
                } else {
                    Access::Projects(projects.split(',').map(String::from).collect())
                };
                tokens.add(token, access);
            }
        }
        Ok(tokens)
    }

    fn add(&mut self, token: &str, access: Access) {
        self.add_digest(digest(token), access);
    }

    fn add_digest(&mut self, token: [u8; 32], access: Access) {
        let merged = match (self.0.remove(&token), access) {
            (Some(Access::AllProjects), _) | (_, Access::AllProjects) => Access::AllProjects,
            (Some(Access::Projects(mut old)), Access::Projects(new)) => {
                old.extend(new);
                Access::Projects(old)
            }
            (None, access) => access,
        };
        self.0.insert(token, merged);
    }

    pub fn merge(&mut self, other: Tokens) {
        for (token, access) in other.0 {
            self.add_digest(token, access);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The projects `token` may use; `Err` when it is missing or unknown.
    pub fn access(&self, token: Option<&str>) -> Result<&Access, Refused> {
        let token = token.ok_or(Refused::Missing)?;
        self.0.get(&digest(token)).ok_or(Refused::Unknown)
    }

    /// May `token` use `project`? `Err` says why not.
    pub fn check(&self, token: Option<&str>, project: &str) -> Result<(), Refused> {
        match self.access(token)? {
            Access::AllProjects => Ok(()),
            Access::Projects(p) if p.contains(project) => Ok(()),
            Access::Projects(_) => Err(Refused::OtherProject(project.to_string())),
        }
    }
}
