//! Where the command-line client finds its server and token, in the order of the official IronMQ
//! clients (iron_core): `~/.iron.json`, then `IRON_*`, then `IRON_MQ_*` environment variables,
//! then `./iron.json`, then flags (later wins). In a file, an `"iron_mq"` object overrides the
//! top level.

use super::Failure;
use serde_json::Value;
use std::path::Path;

/// The settings one source gives (`None`: it says nothing of it).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct Settings {
    /// OAuth token [env: IRON_TOKEN]
    #[arg(long)]
    pub token: Option<String>,
    /// Project id [env: IRON_PROJECT_ID]
    #[arg(long = "project")]
    pub project_id: Option<String>,
    /// Server host [env: IRON_HOST; default: localhost]
    #[arg(long)]
    pub host: Option<String>,
    /// Server port [env: IRON_PORT; default: 8080 for http, 443 for https]
    #[arg(long)]
    pub port: Option<u16>,
    /// http or https [env: IRON_PROTOCOL or IRON_SCHEME; default: http]
    #[arg(long)]
    pub protocol: Option<String>,
}

impl Settings {
    /// `over` wins where it says something.
    fn then(self, over: Settings) -> Settings {
        Settings {
            token: over.token.or(self.token),
            project_id: over.project_id.or(self.project_id),
            host: over.host.or(self.host),
            port: over.port.or(self.port),
            protocol: over.protocol.or(self.protocol),
        }
    }
}

/// What the client talks to.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `http://host:port/3/projects/PROJECT`.
    pub base: String,
    pub token: String,
}

/// Resolves every source into a target; `flags` last. `home` and `cwd` are where the files
/// are looked for, `env` the environment.
pub fn resolve(
    flags: Settings,
    home: Option<&Path>,
    cwd: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Target, Failure> {
    let mut settings = Settings::default();
    if let Some(home) = home {
        settings = settings.then(from_file(&home.join(".iron.json"))?);
    }
    for prefix in ["IRON_", "IRON_MQ_"] {
        settings = settings.then(from_env(prefix, &env)?);
    }
    let settings = settings
        .then(from_file(&cwd.join("iron.json"))?)
        .then(flags);
    let protocol = settings.protocol.unwrap_or_else(|| "http".into());
    if protocol != "http" && protocol != "https" {
        return Err(Failure::config(format!(
            "protocol must be http or https, got {protocol:?}"
        )));
    }
    let port = settings
        .port
        .unwrap_or(if protocol == "https" { 443 } else { 8080 });
    let host = settings.host.unwrap_or_else(|| "localhost".into());
    let missing = |what: &str, flag: &str, var: &str| {
        Failure::config(format!(
            "no {what}: pass {flag}, set {var}, or put it in iron.json"
        ))
    };
    let token = settings
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("token", "--token", "IRON_TOKEN"))?;
    let project = settings
        .project_id
        .filter(|p| !p.is_empty())
        .ok_or_else(|| missing("project id", "--project", "IRON_PROJECT_ID"))?;
    let project = percent_encoding::utf8_percent_encode(&project, super::api::SEGMENT);
    Ok(Target {
        base: format!("{protocol}://{host}:{port}/3/projects/{project}"),
        token,
    })
}

/// A config file's settings; a missing file says nothing, an unreadable one is an error.
fn from_file(path: &Path) -> Result<Settings, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(err) => {
            return Err(Failure::config(format!(
                "cannot read {}: {err}",
                path.display()
            )));
        }
    };
    let bad = |why: String| Failure::config(format!("{}: {why}", path.display()));
    let json: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if !json.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    let top = settings_of(&json).map_err(bad)?;
    match json.get("iron_mq") {
        None => Ok(top),
        Some(mq) => Ok(top.then(settings_of(mq).map_err(bad)?)),
    }
}

/// The settings of one JSON object of a config file.
fn settings_of(json: &Value) -> Result<Settings, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{key} must be a string, got {other}")),
        }
    };
    let port = match json.get("port") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(port_from(&n.to_string())?),
        Some(Value::String(s)) => Some(port_from(s)?),
        Some(other) => return Err(format!("port must be a number, got {other}")),
    };
    Ok(Settings {
        token: text("token")?,
        project_id: text("project_id")?,
        host: text("host")?,
        port,
        protocol: text("protocol")?.or(text("scheme")?),
    })
}

fn from_env(prefix: &str, env: &impl Fn(&str) -> Option<String>) -> Result<Settings, Failure> {
    let var = |key: &str| env(&format!("{prefix}{key}")).filter(|v| !v.is_empty());
    let port = match var("PORT") {
        Some(port) => {
            Some(port_from(&port).map_err(|e| Failure::config(format!("{prefix}PORT: {e}")))?)
        }
        None => None,
    };
    Ok(Settings {
        token: var("TOKEN"),
        project_id: var("PROJECT_ID"),
        host: var("HOST"),
        port,
        protocol: var("PROTOCOL").or(var("SCHEME")),
    })
}

fn port_from(text: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("port must be from 1 to 65535, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolved(
        flags: Settings,
        files: &[(&str, &str)],
        vars: &[(&str, &str)],
    ) -> Result<Target, Failure> {
        let home = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let dir = if *name == "home" { &home } else { &cwd };
            let file = if *name == "home" {
                ".iron.json"
            } else {
                "iron.json"
            };
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(flags, Some(home.path()), cwd.path(), |k| {
            vars.get(k).cloned()
        })
    }

    #[test]
    fn later_sources_win() {
        let target = resolved(
            Settings {
                port: Some(9000),
                ..Settings::default()
            },
            &[
                (
                    "home",
                    r#"{"token": "home", "project_id": "p", "host": "h1"}"#,
                ),
                ("cwd", r#"{"host": "h2", "iron_mq": {"token": "cwd"}}"#),
            ],
            &[
                ("IRON_HOST", "h3"),
                ("IRON_TOKEN", "env"),
                ("IRON_PROTOCOL", "http"),
                ("IRON_MQ_PROTOCOL", "https"),
            ],
        )
        .unwrap();
        // ./iron.json beats the variables, which beat ~/.iron.json; IRON_MQ_ beats IRON_.
        assert_eq!(target.base, "https://h2:9000/3/projects/p");
        assert_eq!(target.token, "cwd");
    }

    #[test]
    fn defaults_point_at_a_local_server() {
        let target = resolved(
            Settings::default(),
            &[],
            &[("IRON_TOKEN", "t"), ("IRON_PROJECT_ID", "p")],
        )
        .unwrap();
        assert_eq!(target.base, "http://localhost:8080/3/projects/p");
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let message = |r: Result<Target, Failure>| r.unwrap_err().message;
        let no_token = resolved(Settings::default(), &[], &[("IRON_PROJECT_ID", "p")]);
        assert!(message(no_token).contains("IRON_TOKEN"));
        let bad_json = resolved(Settings::default(), &[("cwd", "{not json")], &[]);
        assert!(message(bad_json).contains("iron.json"));
        let bad_port = resolved(Settings::default(), &[], &[("IRON_PORT", "http")]);
        assert!(message(bad_port).contains("IRON_PORT"));
        let bad_protocol = resolved(
            Settings::default(),
            &[],
            &[
                ("IRON_TOKEN", "t"),
                ("IRON_PROJECT_ID", "p"),
                ("IRON_PROTOCOL", "ftp"),
            ],
        );
        assert!(message(bad_protocol).contains("ftp"));
    }
}
