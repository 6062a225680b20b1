//! Refresh (in progress).
