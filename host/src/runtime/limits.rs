//! The per-instance resource limiter: a memory cap that traps with a clear
//! message, and the peak it saw, so a pooled instance that grew too much
//! is not reused.

use wasmtime::ResourceLimiter;

/// Table elements allowed per table; far above what compilers emit.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

#[derive(Debug)]
pub struct MemoryCap {
    cap: usize,
    peak: usize,
}

impl MemoryCap {
    pub fn new(cap: usize) -> Self {
        Self { cap, peak: 0 }
    }

    /// The largest linear memory this instance has had, in bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }

    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            // A trap rather than a failed grow: guests rarely handle the
            // failure, and the error names the limit.
            return Err(wasmtime::format_err!(
                "memory cap of {} MiB reached (plugins.memory_mb)",
                self.cap / (1024 * 1024)
            ));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
