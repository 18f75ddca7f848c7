use std::time::{SystemTime, UNIX_EPOCH};

use uuid::{Timestamp, Uuid};

/// The time source; tests substitute a fixed or stepping clock.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Whole seconds since the Unix epoch, the unit of every API timestamp.
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The machine clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Where new identifiers and secrets come from.
pub trait IdSource: Send + Sync {
    /// A time-ordered UUIDv7 whose timestamp is `at_ms`, so ids sort like creation times.
    fn time_ordered(&self, at_ms: i64) -> Uuid;
    /// A random UUIDv4.
    fn random(&self) -> Uuid;
    /// 16 random bytes for secrets such as API keys.
    fn secret_bytes(&self) -> [u8; 16];
}

/// Ids from the `uuid` crate and the operating system's randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidIds;

impl IdSource for UuidIds {
    fn time_ordered(&self, at_ms: i64) -> Uuid {
        // One shared context keeps ids minted in the same millisecond in creation order.
        static CONTEXT: std::sync::Mutex<Option<uuid::ContextV7>> = std::sync::Mutex::new(None);
        let ms = at_ms.max(0) as u64;
        let mut guard = CONTEXT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ctx = guard.get_or_insert_with(uuid::ContextV7::new);
        let ts = Timestamp::from_unix(&*ctx, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
        Uuid::new_v7(ts)
    }

    fn random(&self) -> Uuid {
        Uuid::new_v4()
    }

    fn secret_bytes(&self) -> [u8; 16] {
        rand::random()
    }
}
