//! `device`: a user registers the push token of each device that should be notified while its app is closed.
//! At most [`crate::config::Settings::max_devices`] per user: registering one more forgets the oldest (a user who
//! reinstalls an app leaves dead tokens behind; the newest is the one in use).

use super::App;
use crate::{
    error::{Failure, bad_request},
    frames::DeviceOp,
    ids::UserId,
    notify::Device,
    ports::{DeviceStore, PresenceStore},
};
use tracing::{info, warn};

impl<S: DeviceStore + PresenceStore, P, Q> App<S, P, Q> {
    pub async fn device_op(&self, caller: &UserId, op: &DeviceOp, now: i64) -> Result<(), Failure> {
        match op {
            DeviceOp::Register { platform, token } => {
                if !self.notifier.supports(*platform) {
                    return Err(bad_request(format!(
                        "this deployment sends no {} notifications",
                        platform.as_str()
                    )));
                }
                let mut devices = self.store.devices(caller).await?;
                if devices.iter().any(|d| &d.token == token && d.platform == *platform) {
                    // Registered already: a retry, maybe of an attempt that failed before marking.
                    self.store.mark_devices(caller, true).await?;
                    return Ok(());
                }
                let endpoint = self.notifier.create_endpoint(*platform, token).await?;
                let device = Device {
                    token: token.clone(),
                    platform: *platform,
                    endpoint,
                    created_at: now,
                };
                self.store.put_device(caller, &device).await?;
                // After the device: a notification that found none and marks `false` meanwhile is overridden.
                self.store.mark_devices(caller, true).await?;
                devices.retain(|d| &d.token != token);
                devices.sort_by_key(|d| d.created_at);
                let over = (devices.len() + 1).saturating_sub(self.settings.max_devices);
                for old in devices.into_iter().take(over) {
                    self.forget_device(caller, &old).await;
                }
                info!(platform = platform.as_str(), "device registered");
                Ok(())
            }
            DeviceOp::Unregister { token } => {
                if let Some(d) = self.store.remove_device(caller, token).await?
                    && let Err(e) = self.notifier.delete_endpoint(&d.endpoint).await
                {
                    warn!(error = %e, "the endpoint of an unregistered device was not deleted");
                }
                Ok(())
            }
        }
    }

    /// Forgets a device and its endpoint (best effort: what stays only costs a failed publish later).
    pub(super) async fn forget_device(&self, user: &UserId, d: &Device) {
        if let Err(e) = self.store.remove_device(user, &d.token).await {
            warn!(error = %e, "a device was not forgotten");
            return;
        }
        if let Err(e) = self.notifier.delete_endpoint(&d.endpoint).await {
            warn!(error = %e, "a forgotten device's endpoint was not deleted");
        }
    }
}
