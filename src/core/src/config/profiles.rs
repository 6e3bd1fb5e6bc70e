//! Server profiles and the name patterns that infer one when a sample carries none.

use super::invalid::Invalid;
use super::is_identifier;
use serde::{Deserialize, Serialize};

/// One profile: a name and shell-style glob patterns (`*` any run, `?` one character,
/// matched case-insensitively against the whole server name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDef {
    pub name: String,
    #[serde(default)]
    pub patterns: Vec<String>,
}

fn profile(name: &str, patterns: &[&str]) -> ProfileDef {
    ProfileDef {
        name: name.to_string(),
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
    }
}

/// The original product's seven profiles, with its naming conventions (`ppml0001`,
/// `ppdb001`, `ppweb001`, …) plus common generic hints.
pub fn default_profiles() -> Vec<ProfileDef> {
    vec![
        profile("ml_compute", &["ppml*", "*gpu*", "ml-*", "*-ml-*"]),
        profile(
            "database",
            &["ppdb*", "db*", "*-db-*", "*sql*", "*mongo*", "*redis*"],
        ),
        profile(
            "web_api",
            &["ppweb*", "web*", "*-web-*", "api*", "*-api-*", "nginx*"],
        ),
        profile(
            "conductor_mgmt",
            &["ppcon*", "*conductor*", "mgmt*", "*-mgmt-*"],
        ),
        profile(
            "data_ingest",
            &["ppetl*", "etl*", "*-etl-*", "*kafka*", "*ingest*"],
        ),
        profile("risk_analytics", &["pprisk*", "risk*", "*-risk-*"]),
        profile("generic", &[]),
    ]
}

/// Infers a profile from a server name: the first profile (in config order) with a
/// matching pattern, else `fallback`.
pub fn infer_profile<'a>(profiles: &'a [ProfileDef], server: &str, fallback: &'a str) -> &'a str {
    profiles
        .iter()
        .find(|p| p.patterns.iter().any(|pat| glob_match(pat, server)))
        .map(|p| p.name.as_str())
        .unwrap_or(fallback)
}

/// ASCII-case-insensitive glob match over the whole string (`*` and `?`), iterative with
/// single-star backtracking: no allocation, and no blow-up on hostile names.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Profile names are identifiers, unique, and the default profile is one of them.
pub(crate) fn validate_profiles(profiles: &[ProfileDef], default: &str) -> Result<(), Invalid> {
    for (i, p) in profiles.iter().enumerate() {
        if !is_identifier(&p.name) {
            return Err(Invalid::new(
                format!("profiles[{i}].name"),
                format!("`{}` must be letters, digits and _", p.name),
            ));
        }
        if profiles[..i].iter().any(|q| q.name == p.name) {
            return Err(Invalid::new(
                format!("profiles[{i}].name"),
                format!("`{}` appears twice", p.name),
            ));
        }
    }
    if !profiles.iter().any(|p| p.name == default) {
        return Err(Invalid::new(
            "ingest.default_profile",
            format!("`{default}` is not one of the profiles"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_prefix_suffix_and_middle() {
        assert!(glob_match("ppml*", "ppml0001"));
        assert!(glob_match("PPML*", "ppml0001"));
        assert!(glob_match("*gpu*", "node-gpu-7"));
        assert!(glob_match("db?", "db1"));
        assert!(!glob_match("db?", "db12"));
        assert!(!glob_match("ppml*", "xppml"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b*c", "aXbXd"));
        assert!(glob_match("a*b*c", "aXbXc"));
    }

    #[test]
    fn infers_profiles_from_original_names() {
        let profiles = default_profiles();
        assert_eq!(
            infer_profile(&profiles, "ppml0001", "generic"),
            "ml_compute"
        );
        assert_eq!(infer_profile(&profiles, "ppdb003", "generic"), "database");
        assert_eq!(infer_profile(&profiles, "ppweb012", "generic"), "web_api");
        assert_eq!(
            infer_profile(&profiles, "ppcon01", "generic"),
            "conductor_mgmt"
        );
        assert_eq!(
            infer_profile(&profiles, "ppetl002", "generic"),
            "data_ingest"
        );
        assert_eq!(
            infer_profile(&profiles, "pprisk001", "generic"),
            "risk_analytics"
        );
        assert_eq!(
            infer_profile(&profiles, "mystery-box", "generic"),
            "generic"
        );
    }
}
