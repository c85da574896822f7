//! The crate's one error type.

/// Everything that can go wrong in strata-train. Variants carry values, not preformatted text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name (string identifier or `class_name`) that Keras would not resolve either.
    #[error("unknown {kind} `{name}`{}; known names: {}", did_you_mean(name, known), known.join(", "))]
    UnknownName {
        /// "optimizer", "loss", "metric", ...
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// Every name that resolves.
        known: Vec<&'static str>,
    },
    /// A config value that is missing, of the wrong type or out of range.
    #[error("{object}: config key `{key}` {problem}")]
    Config {
        /// The class being configured (`Adam`, `ExponentialDecay`, ...).
        object: String,
        /// The config key.
        key: String,
        /// What is wrong, and the fix.
        problem: String,
    },
    /// An option Keras has that strata does not implement yet (never silently ignored).
    #[error("{object}: option `{option}` is not supported by strata yet ({why})")]
    Unsupported {
        /// The class.
        object: String,
        /// The option.
        option: String,
        /// Why, and what to do instead.
        why: String,
    },
    /// Tensors whose shapes do not fit together.
    #[error("{what}: expected shape {expected:?}, found {found:?}")]
    Shape {
        /// What was being computed.
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// The number of gradients, variables or stored optimizer variables does not match.
    #[error("{what}: expected {expected}, found {found}")]
    Count {
        /// What was counted.
        what: String,
        /// Expected count.
        expected: usize,
        /// Found count.
        found: usize,
    },
    /// An invalid argument value (out of range, non-finite...).
    #[error("{object}: {problem}")]
    Invalid {
        /// The class or function.
        object: String,
        /// What is wrong.
        problem: String,
    },
    /// Reading or writing a file (CSV log, plot) failed.
    #[error("{what} `{}`: {source}", path.display())]
    Io {
        /// What was being done ("writing the CSV log", ...).
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A callback stopped training with an error (`TerminateOnNaN(raise_error=True)`, a failed
    /// checkpoint file name, ...).
    #[error("{callback}: {problem}")]
    Callback {
        /// The callback's Keras class name.
        callback: &'static str,
        /// What happened.
        problem: String,
    },
    /// Drawing the history plot failed.
    #[error("plotting the training history to `{}`: {problem}", path.display())]
    Plot {
        /// The PNG file.
        path: std::path::PathBuf,
        /// What the plotting backend reported.
        problem: String,
    },
    /// A tensor kernel failed.
    #[error(transparent)]
    Tensor(#[from] strata_tensor::Error),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(object: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Invalid { object: object.into(), problem: problem.into() }
    }
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { what, path: path.to_path_buf(), source }
    }
    pub(crate) fn shape(what: impl Into<String>, expected: &[usize], found: &[usize]) -> Error {
        Error::Shape { what: what.into(), expected: expected.to_vec(), found: found.to_vec() }
    }
}

/// ` (did you mean `x`?)` for the closest known name within a small edit distance.
fn did_you_mean(name: &str, known: &[&'static str]) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.len() >= 3
        && let Some(k) = known.iter().find(|k| k.to_ascii_lowercase().starts_with(&lower))
    {
        return format!(" (did you mean `{k}`?)");
    }
    let best = known
        .iter()
        .map(|k| (edit_distance(&name.to_ascii_lowercase(), &k.to_ascii_lowercase()), *k))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 2.max(name.len() / 4) => format!(" (did you mean `{k}`?)"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
