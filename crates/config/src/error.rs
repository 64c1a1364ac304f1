//! The error type: every problem of a configuration, each with its place in the file.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file; `None` when the key is not in the file (its default is used)
    /// or the problem is about the file as a whole.
    pub line: Option<usize>,
    /// Dotted key, with array positions: `c2s.send_queue_len`, `server.domains[1]`,
    /// `tls.certificates[0].domain`. `None` for syntax errors and whole-file problems.
    pub key: Option<String>,
    /// What is wrong, for a person to read.
    pub message: String,
}

impl Problem {
    pub(crate) fn at(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            line: None,
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    /// `LINE: KEY: MESSAGE`, leaving out what is unknown (without the origin, which the
    /// error adds in front).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(line) = self.line {
            write!(f, "{line}")?;
            sep = ": ";
        }
        if let Some(key) = &self.key {
            write!(f, "{sep}{key}")?;
            sep = ": ";
        }
        write!(f, "{sep}{}", self.message)
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read the configuration file: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read but is not a valid configuration. Displayed as one line per problem:
    /// `ORIGIN:LINE: KEY: MESSAGE`.
    #[error("{}", render(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems found (empty for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

fn render(origin: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, problem) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(origin);
        out.push(':');
        if problem.line.is_none() {
            // `causerie.toml: c2s.x: …` rather than `causerie.toml:c2s.x: …`
            out.push(' ');
        }
        out.push_str(&problem.to_string());
    }
    out
}

/// File order first, so the report reads top to bottom; problems without a line (keys left at
/// their default, whole-file problems) come last in the order they were found.
pub(crate) fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_origin_line_key_and_message() {
        let err = ConfigError::Invalid {
            origin: "causerie.toml".to_owned(),
            problems: vec![
                Problem {
                    line: Some(12),
                    key: Some("c2s.send_queue_len".to_owned()),
                    message: "must be at least 1 (got 0)".to_owned(),
                },
                Problem::at("auth.scram_iterations", "must be at least 4096 (got 1)"),
                Problem {
                    line: Some(3),
                    key: None,
                    message: "invalid TOML: unexpected `=`".to_owned(),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "causerie.toml:12: c2s.send_queue_len: must be at least 1 (got 0)\n\
             causerie.toml: auth.scram_iterations: must be at least 4096 (got 1)\n\
             causerie.toml:3: invalid TOML: unexpected `=`"
        );
    }

    #[test]
    fn problems_sort_by_line_with_lineless_last() {
        let mut problems = vec![
            Problem::at("a", "x"),
            Problem {
                line: Some(9),
                key: None,
                message: "y".to_owned(),
            },
            Problem {
                line: Some(2),
                key: None,
                message: "z".to_owned(),
            },
        ];
        sort_problems(&mut problems);
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(2), Some(9), None]);
    }
}
