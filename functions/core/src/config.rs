//! Settings, read once from the environment at init (fail fast): the same variables on AWS (set by template.yaml)
//! and locally (resolved from template.yaml by natter-local). Each variable is named once, here.

use std::env;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Declares the table names: each field with its environment variable and its logical id in template.yaml.
macro_rules! tables {
    ($($(#[$doc:meta])* $field:ident: $var:literal => $logical:literal),* $(,)?) => {
        /// DynamoDB table names.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Tables {
            $($(#[$doc])* pub $field: String,)*
        }

        impl Tables {
            /// The environment variable and logical name of each table, for tests and natter-local.
            pub const ENV: &'static [(&'static str, &'static str)] = &[$(($var, $logical)),*];

            /// Builds the names from a lookup of environment variable names.
            pub fn from_lookup(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
                let need = |name: &'static str| get(name).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name));
                Ok(Self { $($field: need($var)?,)* })
            }
        }
    };
}

tables! {
    users: "USERS_TABLE" => "Users",
    friends: "FRIENDS_TABLE" => "Friends",
    groups: "GROUPS_TABLE" => "Groups",
    group_members: "GROUP_MEMBERS_TABLE" => "GroupMembers",
    messages: "MESSAGES_TABLE" => "Messages",
    mailbox: "MAILBOX_TABLE" => "Mailbox",
    message_index: "MESSAGE_INDEX_TABLE" => "MessageIndex",
    group_history: "GROUP_HISTORY_TABLE" => "GroupHistory",
    sessions: "SESSIONS_TABLE" => "Sessions",
    connections: "CONNECTIONS_TABLE" => "Connections",
    presence: "PRESENCE_TABLE" => "Presence",
    send_claims: "SEND_CLAIMS_TABLE" => "SendClaims",
    invites: "INVITES_TABLE" => "Invites",
    devices: "DEVICES_TABLE" => "Devices",
}

impl Tables {
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
    pub index: Option<String>,
    pub fanout: Option<String>,
    pub presence: Option<String>,
    /// Push notifications to users with no live connection (delayed by the queue).
    pub notify: Option<String>,
}

impl Queues {
    pub const INDEX: &'static str = "INDEX_QUEUE_URL";
    pub const FANOUT: &'static str = "FANOUT_QUEUE_URL";
    pub const PRESENCE: &'static str = "PRESENCE_QUEUE_URL";
    pub const NOTIFY: &'static str = "NOTIFY_QUEUE_URL";
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
    /// Messages and their index rows expire after this many seconds (`RETENTION_DAYS` in the environment); 0
    /// keeps them forever.
    pub retention_secs: i64,
    /// Members per fan-out chunk job.
    pub fanout_chunk: usize,
    /// Concurrent @connections posts per invocation.
    pub push_concurrency: usize,
    /// The most members a group may have (replies list them all within API Gateway's 128 KB).
    pub max_group_members: u64,
    /// The most friends a user may have (the `friends` reply lists them all).
    pub max_friends: usize,
    /// The most groups a user may belong to (joining one more, or being added to one more, is refused).
    pub max_groups_per_user: u64,
    /// Groups one user may create per clock hour (0: no limit).
    pub group_creates_per_hour: u64,
    /// How long after sending the sender may edit a message (`EDIT_WINDOW_SECONDS`).
    pub edit_window_secs: i64,
    /// How long after sending the sender may delete a message for everyone (`DELETE_WINDOW_SECONDS`).
    pub delete_window_secs: i64,
    /// The most readers that may react to one message (the reactions live in the message's item, whose size
    /// every history read pays for).
    pub max_reactions: usize,
    /// Registered push devices per user; registering one more forgets the oldest.
    pub max_devices: usize,
    /// At most one notification per conversation in this many milliseconds; what comes in between is coalesced.
    pub notify_every_ms: i64,
    /// Whether sends queue notifications for offline recipients (the deployment has a notify queue).
    pub notify_offline: bool,
    /// The largest attachment `attach` accepts (`MAX_ATTACHMENT_BYTES`, at most the protocol's 100 MB).
    pub max_attachment_bytes: u64,
    /// Attachment bytes one user may announce per day (`UPLOAD_BYTES_PER_DAY`; 0: no limit): storage is paid for
    /// by the deployment, so no one client may fill it.
    pub upload_bytes_per_day: u64,
    /// How long an upload URL works: the protocol's 15 minutes.
    pub upload_url_secs: u64,
    /// How long a download URL in a push, `sync` or `history` works (`DOWNLOAD_URL_SECONDS`): a client that
    /// shows an attachment later asks `history` again for a fresh one.
    pub download_url_secs: u64,
    /// Frames one user may send per window over all its connections (0: no limit). 100 per 2 s: 50 a second,
    /// bursts of 100.
    pub frame_limit: u64,
    /// The rate limit's window.
    pub frame_window_ms: i64,
    /// Live connections one user may hold at once (0: no limit); `$connect` refuses one more.
    pub max_connections: usize,
    /// How long after a `sync` its catch-up pushes what the sync could not see yet (longer than DynamoDB's index
    /// lag, which is usually well under a second).
    pub catch_up_delay_secs: i32,
    /// Seals the cursors replies carry ([`crate::seal`]): the deployment's key where `CURSOR_KEY_ARN` names one
    /// (read at init, see `aws::wiring`), else a key of this process.
    pub cursor_key: crate::seal::CursorKey,
}

impl Settings {
    /// The expiry (epoch seconds) of a message stored at `now_ms`, if messages expire.
    pub fn message_expiry(&self, now_ms: i64) -> Option<i64> {
        (self.retention_secs > 0).then(|| now_ms / 1000 + self.retention_secs)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connection_ttl_secs: 3 * 3600,
            claim_lease_ms: 8_000,
            claim_ttl_secs: 24 * 3600,
            retention_secs: 365 * 86_400,
            fanout_chunk: 100,
            push_concurrency: 32,
            max_group_members: 1000,
            max_friends: 1000,
            max_groups_per_user: 1000,
            group_creates_per_hour: 20,
            edit_window_secs: 15 * 60,
            delete_window_secs: 48 * 3600,
            max_reactions: 1000,
            max_devices: 10,
            notify_every_ms: 60_000,
            notify_offline: false,
            max_attachment_bytes: crate::frames::MAX_ATTACHMENT_BYTES,
            upload_bytes_per_day: 1 << 30,
            upload_url_secs: 15 * 60,
            download_url_secs: 3600,
            frame_limit: 100,
            frame_window_ms: 2000,
            max_connections: 10,
            catch_up_delay_secs: 2,
            cursor_key: crate::seal::CursorKey::random(),
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
    /// The S3 bucket of attachments (`ATTACHMENT_BUCKET`); only the functions that sign or check them have it.
    pub attachment_bucket: Option<String>,
    /// The SNS platform application of each push platform this deployment offers.
    pub platform_applications: std::collections::HashMap<crate::notify::Platform, String>,
    pub settings: Settings,
}

/// The variables naming each push platform's SNS platform application (empty or absent: not offered).
pub const PLATFORM_APPLICATION_VARS: [(crate::notify::Platform, &str); 3] = [
    (crate::notify::Platform::Fcm, "FCM_PLATFORM_APPLICATION_ARN"),
    (crate::notify::Platform::Apns, "APNS_PLATFORM_APPLICATION_ARN"),
    (crate::notify::Platform::Webpush, "WEBPUSH_PLATFORM_APPLICATION_ARN"),
];

/// Reads the variables of one lookup, each named once at its call.
struct Vars<G>(G);

impl<G: Fn(&'static str) -> Option<String>> Vars<G> {
    fn opt(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    /// Overrides `into` with the variable's value, if set.
    fn num<T: std::str::FromStr>(&self, name: &'static str, into: &mut T) -> Result<(), ConfigError> {
        if let Some(v) = self.opt(name) {
            *into = v.parse().map_err(|_| ConfigError::Invalid {
                name,
                reason: format!("`{v}` is not a number"),
            })?;
        }
        Ok(())
    }

    /// As [`Vars::num`], for a value that must be at least `min`.
    fn at_least<T>(&self, name: &'static str, min: T, into: &mut T) -> Result<(), ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        self.num(name, into)?;
        if *into < min {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("must be at least {min}"),
            });
        }
        Ok(())
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&get);
        let mut s = Settings::default();
        vars.num("CONNECTION_TTL_SECONDS", &mut s.connection_ttl_secs)?;
        vars.num("CLAIM_LEASE_MS", &mut s.claim_lease_ms)?;
        vars.num("CLAIM_TTL_SECONDS", &mut s.claim_ttl_secs)?;
        let mut retention_days = s.retention_secs / 86_400;
        vars.num("RETENTION_DAYS", &mut retention_days)?;
        s.retention_secs = retention_days * 86_400;
        vars.at_least("FANOUT_CHUNK_SIZE", 1, &mut s.fanout_chunk)?;
        vars.at_least("PUSH_CONCURRENCY", 1, &mut s.push_concurrency)?;
        vars.at_least("MAX_GROUP_MEMBERS", 1, &mut s.max_group_members)?;
        vars.at_least("MAX_GROUPS_PER_USER", 1, &mut s.max_groups_per_user)?;
        vars.num("GROUP_CREATES_PER_HOUR", &mut s.group_creates_per_hour)?;
        vars.num("EDIT_WINDOW_SECONDS", &mut s.edit_window_secs)?;
        vars.num("DELETE_WINDOW_SECONDS", &mut s.delete_window_secs)?;
        vars.num("FRAME_RATE_LIMIT", &mut s.frame_limit)?;
        vars.at_least("FRAME_RATE_WINDOW_MS", 1, &mut s.frame_window_ms)?;
        vars.num("MAX_CONNECTIONS_PER_USER", &mut s.max_connections)?;
        vars.num("CATCH_UP_DELAY_SECONDS", &mut s.catch_up_delay_secs)?;
        vars.at_least("MAX_ATTACHMENT_BYTES", 1, &mut s.max_attachment_bytes)?;
        s.max_attachment_bytes = s.max_attachment_bytes.min(crate::frames::MAX_ATTACHMENT_BYTES);
        vars.at_least("DOWNLOAD_URL_SECONDS", 60, &mut s.download_url_secs)?;
        vars.num("UPLOAD_BYTES_PER_DAY", &mut s.upload_bytes_per_day)?;
        Ok(Self {
            tables: Tables::from_lookup(&get)?,
            queues: Queues {
                index: vars.opt(Queues::INDEX),
                fanout: vars.opt(Queues::FANOUT),
                presence: vars.opt(Queues::PRESENCE),
                notify: vars.opt(Queues::NOTIFY),
            },
            management_endpoint: vars.opt("MANAGEMENT_ENDPOINT"),
            attachment_bucket: vars.opt("ATTACHMENT_BUCKET"),
            platform_applications: PLATFORM_APPLICATION_VARS
                .iter()
                .filter_map(|(p, v)| vars.opt(v).map(|arn| (*p, arn)))
                .collect(),
            settings: Settings {
                notify_offline: vars.opt(Queues::NOTIFY).is_some(),
                ..s
            },
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
        let m = vars(&[
            ("INDEX_QUEUE_URL", "http://q/h"),
            ("FANOUT_CHUNK_SIZE", "50"),
            ("MAX_GROUP_MEMBERS", "20"),
        ]);
        let c = Config::from_lookup(|k| m.get(k).cloned()).unwrap();
        assert_eq!(c.tables.messages, "t-Messages");
        assert_eq!(c.queues.index.as_deref(), Some("http://q/h"));
        assert_eq!(c.queues.fanout, None);
        assert_eq!((c.settings.fanout_chunk, c.settings.max_group_members), (50, 20));
    }

    #[test]
    fn fails_fast_on_missing_or_bad_values_naming_the_variable() {
        let mut m = vars(&[]);
        m.remove("SESSIONS_TABLE");
        assert!(matches!(
            Config::from_lookup(|k| m.get(k).cloned()),
            Err(ConfigError::Missing("SESSIONS_TABLE"))
        ));
        let m = vars(&[("RETENTION_DAYS", "soon")]);
        assert!(matches!(
            Config::from_lookup(|k| m.get(k).cloned()),
            Err(ConfigError::Invalid {
                name: "RETENTION_DAYS",
                ..
            })
        ));
        let m = vars(&[("PUSH_CONCURRENCY", "0")]);
        assert!(matches!(
            Config::from_lookup(|k| m.get(k).cloned()),
            Err(ConfigError::Invalid {
                name: "PUSH_CONCURRENCY",
                ..
            })
        ));
    }

    #[test]
    fn prefixed_tables_share_the_logical_names() {
        assert_eq!(Tables::prefixed("x_").send_claims, "x_SendClaims");
    }
}
