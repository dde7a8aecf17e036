//! `device`: register or unregister a device's push token (notifications while the app is closed).

use super::{Problem, fields::Fields};
use crate::notify::{DeviceToken, Platform};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum DeviceOp {
    Register { platform: Platform, token: DeviceToken },
    Unregister { token: DeviceToken },
}

pub(super) fn parse(f: &Fields<'_>) -> Result<DeviceOp, Problem> {
    let token = || f.parsed("token", DeviceToken::parse);
    match f.op("register, unregister")? {
        "register" => {
            let platform = Platform::parse(f.str("platform")?)
                .ok_or_else(|| Problem::bad("`platform` must be fcm, apns or webpush"))?;
            Ok(DeviceOp::Register {
                platform,
                token: token()?,
            })
        }
        "unregister" => Ok(DeviceOp::Unregister { token: token()? }),
        _ => Err(Problem::bad("`op` must be register or unregister")),
    }
}
