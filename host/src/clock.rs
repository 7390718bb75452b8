//! Wall-clock time as the store keeps it: milliseconds since the Unix
//! epoch.

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    UnixMs::now().0
}

/// A moment, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMs(pub u64);

impl UnixMs {
    pub fn now() -> Self {
        Self(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        )
    }

    /// `ms` milliseconds later.
    pub fn plus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// `ms` milliseconds earlier, or the epoch.
    pub fn minus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_sub(ms))
    }

    /// How long from `self` until `later` (zero if `later` is past).
    pub fn until(self, later: Self) -> std::time::Duration {
        std::time::Duration::from_millis(later.0.saturating_sub(self.0))
    }

    /// As a database column stores it.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// From a database column (a negative value is the epoch).
    pub fn from_i64(ms: i64) -> Self {
        Self(ms.max(0) as u64)
    }
}
