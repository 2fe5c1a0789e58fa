//! Span-carrying config errors: every message is `FILE:LINE:COL: message`.
