//! Settings, read once from the environment at init (fail fast): the same variables on AWS (set by template.yaml)
//! and locally (resolved from template.yaml by natter-local).

use std::env;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// DynamoDB table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub users: String,
    pub friends: String,
    pub groups: String,
    pub group_members: String,
    pub messages: String,
    pub message_index: String,
    pub group_history: String,
    pub sessions: String,
    pub connections: String,
    pub presence: String,
    pub send_claims: String,
}

impl Tables {
    /// The environment variable and logical name of each table, in one place for config, tests and natter-local.
    pub const ENV: [(&'static str, &'static str); 11] = [
        ("USERS_TABLE", "Users"),
        ("FRIENDS_TABLE", "Friends"),
        ("GROUPS_TABLE", "Groups"),
        ("GROUP_MEMBERS_TABLE", "GroupMembers"),
        ("MESSAGES_TABLE", "Messages"),
        ("MESSAGE_INDEX_TABLE", "MessageIndex"),
        ("GROUP_HISTORY_TABLE", "GroupHistory"),
        ("SESSIONS_TABLE", "Sessions"),
        ("CONNECTIONS_TABLE", "Connections"),
        ("PRESENCE_TABLE", "Presence"),
        ("SEND_CLAIMS_TABLE", "SendClaims"),
    ];

    /// Builds the names from a lookup of environment variable names.
    pub fn from_lookup(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let need = |name: &'static str| get(name).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name));
        Ok(Self {
            users: need("USERS_TABLE")?,
            friends: need("FRIENDS_TABLE")?,
            groups: need("GROUPS_TABLE")?,
            group_members: need("GROUP_MEMBERS_TABLE")?,
            messages: need("MESSAGES_TABLE")?,
            message_index: need("MESSAGE_INDEX_TABLE")?,
            group_history: need("GROUP_HISTORY_TABLE")?,
            sessions: need("SESSIONS_TABLE")?,
            connections: need("CONNECTIONS_TABLE")?,
            presence: need("PRESENCE_TABLE")?,
            send_claims: need("SEND_CLAIMS_TABLE")?,
        })
    }

    /// Every table named `{prefix}{LogicalName}`: how tests isolate themselves in one emulator.
    pub fn prefixed(prefix: &str) -> Self {
        Self::from_lookup(|var| {
            Self::ENV
                .iter()
                .find(|(v, _)| *v == var)
                .map(|(_, logical)| format!("{prefix}{logical}"))
        })
        .unwrap_or_else(|_| unreachable!("every variable of ENV is mapped"))
    }
}

/// SQS queue URLs; a function needs only the queues it writes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queues {
    pub history: Option<String>,
    pub fanout: Option<String>,
    pub presence: Option<String>,
}

/// Tunables, with the defaults the template also sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a connection item lives (TTL): past API Gateway's 2 h maximum so live connections never expire.
    pub connection_ttl_secs: i64,
    /// How long a send attempt owns its claim before a retry may take over (longer than the send timeout).
    pub claim_lease_ms: i64,
    /// How long a clientMsgId is remembered.
    pub claim_ttl_secs: i64,
    /// Messages and their index rows expire after this many days; 0 keeps them forever.
    pub retention_days: i64,
    /// The delay of presence events (debounces flapping connections).
    pub presence_delay_secs: i32,
    /// Members per fan-out chunk job.
    pub fanout_chunk: usize,
    /// Concurrent @connections posts per invocation.
    pub push_concurrency: usize,
    /// The most members a group may have (replies list them all within API Gateway's 128 KB).
    pub max_group_members: u64,
    /// The most friends a user may have (the `friends` reply lists them all).
    pub max_friends: usize,
    /// Frames one connection may send per window (0: no limit). 100 per 2 s: 50 a second, bursts of 100.
    pub frame_limit: u64,
    /// The rate limit's window.
    pub frame_window_ms: i64,
}

impl Settings {
    /// The expiry (epoch seconds) of a message stored at `now_ms`, if messages expire.
    pub fn message_expiry(&self, now_ms: i64) -> Option<i64> {
        (self.retention_days > 0).then(|| now_ms / 1000 + self.retention_days * 86_400)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connection_ttl_secs: 3 * 3600,
            claim_lease_ms: 8_000,
            claim_ttl_secs: 24 * 3600,
            retention_days: 365,
            presence_delay_secs: 5,
            fanout_chunk: 100,
            push_concurrency: 32,
            max_group_members: 1024,
            max_friends: 1000,
            frame_limit: 100,
            frame_window_ms: 2000,
        }
    }
}

/// Everything a function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub tables: Tables,
    pub queues: Queues,
    /// The @connections endpoint: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` on AWS.
    pub management_endpoint: Option<String>,
    pub settings: Settings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let opt = |name: &'static str| get(name).filter(|v| !v.is_empty());
        let mut settings = Settings::default();
        fn num<T: std::str::FromStr>(
            name: &'static str,
            value: Option<String>,
            into: &mut T,
        ) -> Result<(), ConfigError> {
            if let Some(v) = value {
                *into = v.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: format!("`{v}` is not a number"),
                })?;
            }
            Ok(())
        }
        num(
            "CONNECTION_TTL_SECONDS",
            opt("CONNECTION_TTL_SECONDS"),
            &mut settings.connection_ttl_secs,
        )?;
        num("CLAIM_LEASE_MS", opt("CLAIM_LEASE_MS"), &mut settings.claim_lease_ms)?;
        num(
            "CLAIM_TTL_SECONDS",
            opt("CLAIM_TTL_SECONDS"),
            &mut settings.claim_ttl_secs,
        )?;
        num("RETENTION_DAYS", opt("RETENTION_DAYS"), &mut settings.retention_days)?;
        num(
            "PRESENCE_DELAY_SECONDS",
            opt("PRESENCE_DELAY_SECONDS"),
            &mut settings.presence_delay_secs,
        )?;
        num(
            "FANOUT_CHUNK_SIZE",
            opt("FANOUT_CHUNK_SIZE"),
            &mut settings.fanout_chunk,
        )?;
        num(
            "PUSH_CONCURRENCY",
            opt("PUSH_CONCURRENCY"),
            &mut settings.push_concurrency,
        )?;
        num("FRAME_RATE_LIMIT", opt("FRAME_RATE_LIMIT"), &mut settings.frame_limit)?;
        num(
            "FRAME_RATE_WINDOW_MS",
            opt("FRAME_RATE_WINDOW_MS"),
            &mut settings.frame_window_ms,
        )?;
        if settings.frame_window_ms < 1 {
            return Err(ConfigError::Invalid {
                name: "FRAME_RATE_WINDOW_MS",
                reason: "must be at least 1".into(),
            });
        }
        if !(0..=900).contains(&settings.presence_delay_secs) {
            return Err(ConfigError::Invalid {
                name: "PRESENCE_DELAY_SECONDS",
                reason: "SQS allows 0 to 900".into(),
            });
        }
        if settings.fanout_chunk == 0 || settings.push_concurrency == 0 {
            return Err(ConfigError::Invalid {
                name: "FANOUT_CHUNK_SIZE",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            tables: Tables::from_lookup(&get)?,
            queues: Queues {
                history: opt("HISTORY_QUEUE_URL"),
                fanout: opt("FANOUT_QUEUE_URL"),
                presence: opt("PRESENCE_QUEUE_URL"),
            },
            management_endpoint: opt("MANAGEMENT_ENDPOINT"),
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(extra: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
        let mut m: HashMap<_, _> = Tables::ENV.iter().map(|(v, l)| (*v, format!("t-{l}"))).collect();
        m.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        m
    }

    #[test]
    fn reads_tables_queues_and_settings() {
        let m = vars(&[("HISTORY_QUEUE_URL", "http://q/h"), ("FANOUT_CHUNK_SIZE", "50")]);
        let c = Config::from_lookup(|k| m.get(k).cloned()).unwrap();
        assert_eq!(c.tables.messages, "t-Messages");
        assert_eq!(c.queues.history.as_deref(), Some("http://q/h"));
        assert_eq!(c.queues.fanout, None);
        assert_eq!(c.settings.fanout_chunk, 50);
    }

    #[test]
    fn fails_fast_on_missing_or_bad_values() {
        let mut m = vars(&[]);
        m.remove("SESSIONS_TABLE");
        assert!(matches!(
            Config::from_lookup(|k| m.get(k).cloned()),
            Err(ConfigError::Missing("SESSIONS_TABLE"))
        ));
        let m = vars(&[("PRESENCE_DELAY_SECONDS", "soon")]);
        assert!(matches!(
            Config::from_lookup(|k| m.get(k).cloned()),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn prefixed_tables_share_the_logical_names() {
        assert_eq!(Tables::prefixed("x_").send_claims, "x_SendClaims");
    }
}
