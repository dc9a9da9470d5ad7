//! The `.fcm` text format (to be written).
